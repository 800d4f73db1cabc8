import type { ThriftServer } from '../support/realDelta/thriftServer';
import temporalGlobalTeardown from '../support/globalTeardown';

export default async function globalTeardown(): Promise<void> {
  try {
    await (globalThis as { __cdfThriftServer?: ThriftServer }).__cdfThriftServer?.stop();
  } finally {
    await temporalGlobalTeardown();
  }
}
