/**
 * How every worker process is started (`npm run worker`, `npm start`, the fan-in benchmark):
 * package.json's scripts spell these out, and a unit test keeps them in step with this file.
 * Measured with `npm run bench:fanin` (10M ids): peak RSS 681 MB with neither, 474 MB with both
 * and the default DuckDB limit, at the same wall time (the worker waits on the network, not on
 * the GC or malloc).
 */

/**
 * `--max-semi-space-size=2` (MB) caps V8's young generation in each isolate, the main thread's and
 * the SDK's workflow thread's. Left alone, each grows to tens of MB under the churn of thousands of
 * short activities: 507 MB peak RSS on a 2M-id fan-in without it, 382 MB with it.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates (the SDK core's, DuckDB's, libuv's)
 * an arena of its own, and memory freed in one is not reused by another; two arenas measured
 * about 40 MB less peak RSS. Read by glibc at process start, so it must be in the environment.
 */
export const WORKER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
