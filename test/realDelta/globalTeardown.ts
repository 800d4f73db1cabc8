import type { ThriftServer } from '../support/realDelta/thriftServer';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __cdfThriftServer?: ThriftServer }).__cdfThriftServer?.stop();
}
