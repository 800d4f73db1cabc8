import { runProcess } from '../support/cli';
import { demoEnv, groupSignal, killDemo, startDemo, type Demo } from '../support/demoProcess';

/*
 * `npm start` while it serves, as a new user watches it: demo commits keep arriving, the sources
 * capture them and the event-driven fan-in dispatches them, each step a line of the real
 * process's output; and `npm run traffic` in a second terminal hands its commits to the running
 * process instead of failing on DuckDB's file lock.
 */
describe('the live demo of `npm start`', () => {
  const started: Demo[] = [];
  afterAll(() => {
    for (const demo of started) killDemo(demo);
  });
  const demo = async (args: string[]) => {
    const d = await startDemo(args);
    started.push(d);
    return d;
  };

  it('keeps writing traffic while serving, and a second fan-in dispatches the new commits within 90 s', async () => {
    const d = await demo(['--commits', '1', '--traffic-every', '5s']);
    await d.waitFor(/serving: a demo commit per source every 5s; .*each capture starts a fan-in/);
    const servingAt = Date.now();
    await d.waitFor(/serving:[\s\S]*\] fan-in fi-\S+: [\d,]+ changed ids? dispatched in \d+ batch(es)? \(\d+ succeeded, 0 parked\); the target holds [\d,]+ rows/);
    expect(Date.now() - servingAt).toBeLessThan(90_000);

    // In order after serving: a commit written, captured into the registry, then dispatched.
    const served = d.output().slice(d.output().indexOf('serving:'));
    const traffic = served.search(/\] traffic: 3 commits \(orders v3, customers v3, shipments v3\), [\d,]+ row changes/);
    const captured = served.search(/\] capture (orders|customers|shipments): [\d,]+ registry rows? inserted, offset \d+ of \d+/);
    const dispatched = served.search(/\] fan-in fi-\S+: [\d,]+ changed ids? dispatched/);
    expect(traffic).toBeGreaterThan(0);
    expect(captured).toBeGreaterThan(traffic);
    expect(dispatched).toBeGreaterThan(captured);

    groupSignal(d, 'SIGINT');
    expect(await d.exited).toBe(0);
    expect(d.output()).not.toMatch(/live demo: |Error/);
  });

  it('`npm run traffic` while serving hands its commits to the running worker, which captures and dispatches them', async () => {
    // Seeded and one commit at start, then no demo commit for an hour: only the handed-over ones arrive.
    const d = await demo(['--commits', '1', '--traffic-every', '1h']);
    await d.waitFor(/serving: a demo commit per source every 1h;/);

    const traffic = await runProcess(process.execPath, ['--import', 'tsx', 'scripts/traffic.ts', '--source', 'orders', '--commits', '2', '--inserts', '5', '--updates', '3', '--deletes', '1'], demoEnv(d));
    expect(traffic.stderr).not.toMatch(/Conflicting lock/);
    expect(traffic.code).toBe(0);
    expect(traffic.stdout).toMatch(/is held by process \d+ \(npm start or a worker\): handing the commits to its worker through Temporal/);
    // The seed commit and one demo commit made versions 1 and 2.
    expect(traffic.stdout).toContain('upstream.orders v3: +5 ~3 -1\nupstream.orders v4: +5 ~3 -1\n');

    // Each commit registers one row per id it touched: 5 inserted, 3 updated, 1 deleted.
    await d.waitFor(/serving:[\s\S]*\] capture orders: 18 registry rows inserted, offset 4 of 4/);
    await d.waitFor(/serving:[\s\S]*\] fan-in fi-\S+: [\d,]+ changed ids? dispatched/);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it.each([
    ['0s', /--traffic-every must be a duration such as 20s or 1m, got "0s"/],
    ['30d', /--traffic-every must be at most 24d \(a timer's limit\), got "30d"; --no-traffic writes none at all/],
  ])('refuses --traffic-every %s before starting anything', async (every, message) => {
    const result = await runProcess(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--traffic-every', every]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });
});
