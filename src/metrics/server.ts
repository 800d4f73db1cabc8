import { createServer, type Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { sourceWorkflowId } from '../client/operations';
import type { Config } from '../config/schema';
import { logger } from '../logging';
import { sourceStatusQuery } from '../workflows/messages';
import type { PipelineMetrics } from './pipelineMetrics';

export interface MetricsServerOptions {
  config: Config;
  metrics: PipelineMetrics;
  /** Where the SDK core's own Prometheus exporter listens (Runtime telemetry), appended to /metrics. */
  coreMetricsAddress: string | null;
  /** Reads the source workflows' status for the per-source gauges. */
  client: Client;
  /** True while the worker polls its task queue. */
  ready(): boolean;
}

export interface MetricsServer {
  address: string;
  close(): Promise<void>;
}

/**
 * The worker's HTTP endpoint: `/metrics` (the pipeline's metrics followed by the SDK's runtime
 * metrics, one Prometheus scrape) and `/healthz` (200 while the worker polls, 503 otherwise).
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { config, metrics } = options;
  const refresh = async () => {
    for (const source of config.sources) {
      const handle = options.client.workflow.getHandle(sourceWorkflowId(config, source.name));
      try {
        const description = await handle.describe();
        metrics.sourceStatus(source.name, description.status.name === 'RUNNING' ? await handle.query(sourceStatusQuery) : null);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) metrics.sourceStatus(source.name, null);
        else {
          metrics.sourceStatusUnread(source.name);
          logger.warn({ err: error, source: source.name }, 'metrics: the source status could not be read; its gauges keep their last values');
        }
      }
    }
  };
  // One refresh at a time: while the server is unreachable a read can take longer than the interval, and refreshes must not queue up behind it.
  let refreshing: Promise<void> | null = null;
  const tick = () => void (refreshing ??= refresh().finally(() => (refreshing = null)));
  tick();
  const timer = setInterval(tick, config.worker.metrics.sourceRefreshSeconds * 1000);

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      const ready = options.ready();
      response.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok: polling\n' : 'not ready: the worker is not polling\n');
      return;
    }
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics or /healthz\n');
      return;
    }
    void (async () => {
      const own = await metrics.registry.metrics();
      const core = options.coreMetricsAddress ? await fetch(`http://${options.coreMetricsAddress}/metrics`).then((r) => r.text(), () => '') : '';
      response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(`${own}\n${core}`);
    })().catch((error: Error) => response.writeHead(500).end(error.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.worker.metrics.port, config.worker.metrics.host, resolve);
  });
  const bound = server.address() as { port: number };
  return {
    address: `${config.worker.metrics.host}:${bound.port}`,
    close: async () => {
      clearInterval(timer);
      await refreshing?.catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
