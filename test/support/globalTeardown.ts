import type { DevServer } from '../../src/temporal/devServer';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __cdfDevServer?: DevServer }).__cdfDevServer?.stop();
}
