# syntax=docker/dockerfile:1
# The cdf-orchestrator worker: the compiled TypeScript on Node 20, run as the unprivileged user
# `node`. Build: docker build -t cdf-orchestrator-worker:0.1.0 .   Config: mount it and set
# CDF_CONFIG; secrets (DATABRICKS_TOKEN, TEMPORAL_API_KEY) come from the environment.

FROM node:20.19.5-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Native modules (DuckDB, the Temporal core) come as prebuilt binaries for linux-x64.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

FROM node:20.19.5-bookworm-slim
ENV NODE_ENV=production \
    # Fewer glibc arenas for the core's, DuckDB's and libuv's threads (see README, Benchmarks).
    MALLOC_ARENA_MAX=2 \
    CDF_CONFIG=/etc/cdf/cdf.config.yaml \
    CDF_METRICS_HOST=0.0.0.0 \
    CDF_METRICS_PORT=9464
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 9464
# 200 while the worker polls its task queue (GET /healthz on worker.metrics.port).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.CDF_METRICS_PORT + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains: in-flight activities get worker.shutdownGraceSeconds (give `docker stop -t` more).
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=2", "dist/src/worker.js"]
