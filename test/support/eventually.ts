import type { ChildProcess } from 'node:child_process';

/** Probes until it returns a value, every 250 ms; fails after timeoutMs with what `context` says. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, context: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms\n${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Stops a child process that may have exited already (by a code or a signal), SIGKILL after 15 s. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
