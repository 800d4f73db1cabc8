import { createHash } from 'node:crypto';
import { Duck } from '../../lakehouse/local/duck';
import { RunNotFoundError, type JobLauncher, type LaunchRequest, type LaunchedRun, type LifeCycleState, type ResultState, type RunState } from '../port';

/** The downstream work one run does; for the demo it MERGEs a batch into the target table. */
export type BatchProcessor = (runKey: string, batchNumber: number) => Promise<unknown>;

export interface LocalRunnerOptions {
  processor: BatchProcessor;
  maxConcurrentRuns: number;
  /** Share of first attempts that end FAILED on purpose (chosen by a hash of run key and batch). */
  failFirstAttemptRate: number;
}

interface RunRow {
  run_id: bigint;
  idempotency_token: string;
  run_key: string;
  batch_number: number;
  attempt: number;
  life_cycle_state: LifeCycleState;
  result_state: ResultState | null;
  state_message: string;
  cancel_requested: boolean;
  start_time: bigint | null;
  end_time: bigint | null;
}

/**
 * A job runner in the worker process with the Jobs API's life cycle. Runs are recorded in their
 * own DuckDB file, so a launch with a known idempotency token returns the same run even after a
 * restart, and runs that were RUNNING when the process died are queued again on open (the
 * processor is an idempotent MERGE, as a real job must be).
 */
export class LocalJobRunner implements JobLauncher {
  private running = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(
    private readonly db: Duck,
    private readonly options: LocalRunnerOptions,
  ) {}

  static async open(path: string, options: LocalRunnerOptions): Promise<LocalJobRunner> {
    const db = await Duck.open(path);
    await db.run(`CREATE SEQUENCE IF NOT EXISTS run_ids START 1001`);
    await db.run(`CREATE TABLE IF NOT EXISTS runs (
      run_id BIGINT PRIMARY KEY, idempotency_token VARCHAR NOT NULL UNIQUE, run_key VARCHAR NOT NULL, batch_number INTEGER NOT NULL,
      attempt INTEGER NOT NULL, life_cycle_state VARCHAR NOT NULL, result_state VARCHAR, state_message VARCHAR NOT NULL,
      cancel_requested BOOLEAN NOT NULL, launch_requests INTEGER NOT NULL, queued_time BIGINT NOT NULL, start_time BIGINT, end_time BIGINT)`);
    await db.run(`UPDATE runs SET life_cycle_state = 'QUEUED', state_message = 'requeued after runner restart' WHERE life_cycle_state IN ('PENDING', 'RUNNING', 'TERMINATING')`);
    const runner = new LocalJobRunner(db, options);
    runner.pump();
    return runner;
  }

  async launch(request: LaunchRequest): Promise<LaunchedRun> {
    const { runId, reused } = await this.db.transaction(async (tx) => {
      const [existing] = await tx.all<{ run_id: bigint }>(`SELECT run_id FROM runs WHERE idempotency_token = ?`, [request.idempotencyToken]);
      if (existing) {
        await tx.run(`UPDATE runs SET launch_requests = launch_requests + 1 WHERE run_id = ?`, [existing.run_id]);
        return { runId: existing.run_id, reused: true };
      }
      const [created] = await tx.all<{ run_id: bigint }>(
        `INSERT INTO runs VALUES (nextval('run_ids'), ?, ?, ?, ?, 'QUEUED', NULL, 'Waiting for a free slot', false, 1, epoch_ms(now()), NULL, NULL) RETURNING run_id`,
        [request.idempotencyToken, request.runKey, request.batchNumber, request.attempt],
      );
      return { runId: created!.run_id, reused: false };
    });
    this.pump();
    return { runId: String(runId), runPageUrl: runPageUrl(runId), reused };
  }

  async getRun(runId: string): Promise<RunState> {
    const [row] = await this.db.all<RunRow & Record<string, unknown>>(`SELECT * FROM runs WHERE run_id = ?`, [BigInt(runId)]);
    if (!row) throw new RunNotFoundError(runId, `local run ${runId} does not exist`);
    return toRunState(row);
  }

  async cancel(runId: string): Promise<void> {
    await this.db.run(
      `UPDATE runs SET life_cycle_state = 'TERMINATED', result_state = 'CANCELED', state_message = 'Canceled before it started', end_time = epoch_ms(now())
       WHERE run_id = ? AND life_cycle_state = 'QUEUED'`,
      [BigInt(runId)],
    );
    await this.db.run(
      `UPDATE runs SET cancel_requested = true, life_cycle_state = 'TERMINATING', state_message = 'Cancel requested' WHERE run_id = ? AND life_cycle_state = 'RUNNING'`,
      [BigInt(runId)],
    );
  }

  /** Launch requests per idempotency token (a token asked for twice still has one run). */
  async launchRequests(): Promise<Map<string, number>> {
    const rows = await this.db.all<{ idempotency_token: string; launch_requests: number }>(`SELECT idempotency_token, launch_requests FROM runs`);
    return new Map(rows.map((r) => [r.idempotency_token, r.launch_requests]));
  }

  /** When each run was requested (epoch ms), for latency measurements. */
  async launchTimes(): Promise<{ runKey: string; batchNumber: number; queuedAt: number }[]> {
    const rows = await this.db.all<{ run_key: string; batch_number: number; queued_time: bigint }>(`SELECT run_key, batch_number, queued_time FROM runs`);
    return rows.map((r) => ({ runKey: r.run_key, batchNumber: r.batch_number, queuedAt: Number(r.queued_time) }));
  }

  /** Every run with its batch, attempt, outcome and how often its token was asked for (for audits). */
  async runRecords(): Promise<{ runKey: string; batchNumber: number; attempt: number; lifeCycleState: LifeCycleState; resultState: ResultState | null; launchRequests: number }[]> {
    const rows = await this.db.all<{ run_key: string; batch_number: number; attempt: number; life_cycle_state: LifeCycleState; result_state: ResultState | null; launch_requests: number }>(
      `SELECT run_key, batch_number, attempt, life_cycle_state, result_state, launch_requests FROM runs ORDER BY run_id`,
    );
    return rows.map((r) => ({ runKey: r.run_key, batchNumber: r.batch_number, attempt: r.attempt, lifeCycleState: r.life_cycle_state, resultState: r.result_state, launchRequests: r.launch_requests }));
  }

  async runCount(): Promise<number> {
    const [row] = await this.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM runs`);
    return Number(row!.n);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.running.values());
    await this.db.close();
  }

  private pump(): void {
    if (this.closed) return;
    void this.startQueuedRuns().catch(() => undefined);
  }

  private async startQueuedRuns(): Promise<void> {
    const free = this.options.maxConcurrentRuns - this.running.size;
    if (free <= 0) return;
    const queued = await this.db.all<RunRow & Record<string, unknown>>(
      `SELECT * FROM runs WHERE life_cycle_state = 'QUEUED' ORDER BY run_id LIMIT ${free}`,
    );
    for (const row of queued) {
      const id = String(row.run_id);
      if (this.running.has(id) || this.running.size >= this.options.maxConcurrentRuns || this.closed) continue;
      const execution = this.execute(row).finally(() => {
        this.running.delete(id);
        this.pump();
      });
      this.running.set(id, execution);
    }
  }

  private async execute(row: RunRow): Promise<void> {
    // Only a run still QUEUED starts: a cancel may have ended it since it was picked.
    const started = await this.db.run(
      `UPDATE runs SET life_cycle_state = 'RUNNING', state_message = '', start_time = epoch_ms(now()) WHERE run_id = ? AND life_cycle_state = 'QUEUED'`,
      [row.run_id],
    );
    if (started === 0) return;
    let result: ResultState = 'SUCCESS';
    let message = '';
    try {
      if (row.attempt === 1 && this.shouldFailOnPurpose(row)) {
        throw new Error('injected failure (jobs.local.failFirstAttemptRate)');
      }
      await this.options.processor(row.run_key, row.batch_number);
    } catch (error) {
      result = 'FAILED';
      message = `Task failed with error: ${(error as Error).message}`;
    }
    await this.db.run(
      `UPDATE runs SET life_cycle_state = 'TERMINATED', result_state = CASE WHEN cancel_requested THEN 'CANCELED' ELSE ? END,
         state_message = ?, end_time = epoch_ms(now()) WHERE run_id = ?`,
      [result, message, row.run_id],
    );
  }

  private shouldFailOnPurpose(row: RunRow): boolean {
    if (this.options.failFirstAttemptRate <= 0) return false;
    const digest = createHash('sha256').update(`${row.run_key}/${row.batch_number}`).digest();
    return digest.readUInt32BE(0) / 0xffffffff < this.options.failFirstAttemptRate;
  }
}

function runPageUrl(runId: bigint | string): string {
  return `local-runner://runs/${runId}`;
}

function toRunState(row: RunRow): RunState {
  return {
    runId: String(row.run_id),
    lifeCycleState: row.life_cycle_state,
    resultState: row.result_state ?? undefined,
    stateMessage: row.state_message,
    runPageUrl: runPageUrl(row.run_id),
    startTime: row.start_time === null ? undefined : Number(row.start_time),
    endTime: row.end_time === null ? undefined : Number(row.end_time),
  };
}
