/**
 * `npm start`: the whole pipeline on one machine. Starts (or reuses) the Temporal dev server with
 * its Web UI, runs the worker in this process, writes demo upstream traffic into the local
 * lakehouse, captures every source, runs one fan-in and prints a summary. Then keeps serving until
 * Ctrl-C; with `--once` it exits after the fan-in and prints one JSON summary as its last line.
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import { sourceStatusQuery } from '../src/workflows/messages';
import { ConfigError, loadConfig } from '../src/config/load';
import { DatabricksConfigError } from '../src/databricks/connection';
import { DEMO_TRAFFIC, ensureDemoSourceTable, writeTraffic } from '../src/demo/upstream';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { openLakehouse } from '../src/lakehouse';
import { temporalLogger } from '../src/logging';
import { ensureTemporalCli } from '../src/temporal/cli';
import { isFrontendReachable, startDevServer, type DevServer } from '../src/temporal/devServer';
import { ensureSearchAttributes, searchAttributeFlags } from '../src/temporal/searchAttributes';
import { createPipelineWorker } from '../src/worker';

const options = new Command()
  .name('npm start --')
  .description('Run cdf-orchestrator end to end on the embedded default (Temporal dev server, DuckDB lakehouse, local job runner).')
  .option('--once', 'exit after the first full fan-in and print a JSON summary as the last line')
  .option('--config <file>', 'configuration file (default: $CDF_CONFIG or ./cdf.config.yaml)')
  .option('--no-traffic', 'do not write demo upstream traffic')
  .option('--commits <n>', 'demo commits per source', (v) => positiveInt('--commits', v), DEMO_TRAFFIC.commits)
  .parse()
  .opts<{ once?: boolean; config?: string; traffic: boolean; commits: number }>();

const say = (message: string) => console.log(`[start] ${message}`);

async function main(): Promise<number> {
  const config = loadConfig({ file: options.config });
  const dataDir = resolve(config.lakehouse.local.path, '..');

  let devServer: DevServer | undefined;
  let uiUrl = `http://127.0.0.1:${config.temporal.uiPort}`;
  if (await isFrontendReachable(config.temporal.address)) {
    say(`using the Temporal server already at ${config.temporal.address}`);
  } else {
    const cliPath = await ensureTemporalCli(say);
    const port = Number(config.temporal.address.split(':').pop());
    say(`starting the Temporal dev server on ${config.temporal.address} (history in ${dataDir}/temporal.sqlite) ...`);
    devServer = await startDevServer({
      cliPath,
      ip: config.temporal.address.split(':')[0],
      port,
      uiPort: config.temporal.uiPort,
      dbFile: resolve(dataDir, 'temporal.sqlite'),
      namespace: config.temporal.namespace,
      logFile: resolve(dataDir, 'temporal-server.log'),
      extraArgs: searchAttributeFlags(),
    });
    uiUrl = devServer.uiUrl!;
  }

  Runtime.install({ logger: temporalLogger('WARN') });
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  await ensureSearchAttributes(connection, config.temporal.namespace);
  const lakehouse = await openLakehouse(config);
  say('bundling workflows and starting the worker ...');
  const pipeline = await createPipelineWorker({ config, connection: nativeConnection, lakehouse });
  const running = pipeline.worker.run();

  const shutdown = async () => {
    pipeline.worker.shutdown();
    await running;
    await pipeline.closeAdapters();
    await lakehouse.close();
    await connection.close();
    await nativeConnection.close();
    await devServer?.stop();
  };

  try {
    if (lakehouse instanceof LocalLakehouse && options.traffic) {
      for (const source of config.sources) {
        await ensureDemoSourceTable(lakehouse, source);
        // Seeds differ per source so that sources overlap in some ids but not all.
        const seed = DEMO_TRAFFIC.seed + config.sources.indexOf(source);
        const commits = await writeTraffic(lakehouse, source, { ...DEMO_TRAFFIC, commits: options.commits, seed });
        const rows = commits.reduce((sum, c) => sum + c.inserted + c.updated + c.deleted, 0);
        say(`upstream ${source.table}: ${commits.length} commits, ${rows} row changes (now at version ${commits.at(-1)?.version ?? '?'})`);
      }
    }

    await startSourceWorkflows(client, config);
    let changesCaptured = 0;
    for (const source of config.sources) {
      const report = await captureUntilCaughtUp(client, config, source.name, (cycle) => {
        say(`capture ${source.name}: cycle ${cycle.cycle}, ${cycle.ranges} range(s), offset ${cycle.offsetVersion} of ${cycle.latestVersion}, +${cycle.registryRowsInserted} registry rows`);
      });
      if (report.blocked) say(`capture ${source.name} is BLOCKED: ${report.blocked.type}: ${report.blocked.remedy}`);
      // Lifetime total of the source workflow (carried across continue-as-new), not just this call's cycles.
      const status = await client.workflow.getHandle(sourceWorkflowId(config, source.name)).query(sourceStatusQuery);
      changesCaptured += status.totals.registryRowsInserted;
    }

    say('fan-in: refreshing the changed-ids view and dispatching batches ...');
    let lastLine = '';
    const fanIn = await runFanIn(client, config, {
      onStatus: (status) => {
        const line = `fan-in ${status.runKey ?? ''}: ${status.phase}, ${status.batchesSucceeded}/${status.batches} batches done, ${status.batchesRunning} running, ${status.batchesParked} parked`;
        if (line !== lastLine) say((lastLine = line));
      },
    });
    const counts = await lakehouse.tableCounts();
    const summary = {
      sources: config.sources.length,
      changesCaptured,
      registryRows: counts.registryRows,
      changedIds: fanIn.changedIds,
      batches: fanIn.batches,
      batchesSucceeded: fanIn.batchesSucceeded,
      targetRows: counts.targetRows,
      launches: fanIn.launches,
      runKey: fanIn.runKey,
      ui: `${uiUrl}/namespaces/${config.temporal.namespace}/workflows`,
    };
    say(`done: ${summary.changesCaptured} changes captured, ${summary.changedIds} changed ids in ${summary.batches} batches (${summary.batchesSucceeded} succeeded), target holds ${summary.targetRows} rows`);
    say(`Temporal Web UI: ${summary.ui}`);

    if (options.once) {
      await shutdown();
      console.log(JSON.stringify(summary));
      return 0;
    }
    say('serving: sources keep polling; run another fan-in with `bin/cdf fan-in` (it starts or joins the one fan-in workflow). Ctrl-C stops.');
    await running;
    await shutdown();
    return 0;
  } catch (error) {
    await shutdown().catch(() => undefined);
    throw error;
  }
}

function positiveInt(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`${flag} must be a whole number ≥ 0, got "${value}"`);
  return parsed;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error instanceof ConfigError || error instanceof DatabricksConfigError ? error.message : `[start] failed: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
