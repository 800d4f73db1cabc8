import pino from 'pino';
import { Writable } from 'node:stream';
import { LOG_SERIALIZERS, temporalLogger } from '../../src/logging';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, logger: pino({ serializers: LOG_SERIALIZERS }, stream) };
}

describe('the JSON log', () => {
  it("writes a failed workflow's error with its type, message and cause, and the workflow's id", () => {
    const { lines, logger } = capture();
    const cause = new Error('DELTA_CONCURRENT_APPEND: files were added');
    class ActivityFailure extends Error {}
    const error = new ActivityFailure('Activity task failed', { cause });
    temporalLogger('INFO', logger).error('Workflow failed', { workflowId: 'cdf-fan-in', runId: 'r1', error });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual(
      expect.objectContaining({
        msg: 'Workflow failed',
        workflowId: 'cdf-fan-in',
        error: expect.objectContaining({ type: 'ActivityFailure', message: 'Activity task failed', stack: expect.any(String), cause: expect.objectContaining({ message: 'DELTA_CONCURRENT_APPEND: files were added' }) }),
      }),
    );
  });

  it('drops lines below the level it was given', () => {
    const { lines, logger } = capture();
    temporalLogger('WARN', logger).info('Workflow started', { workflowId: 'x' });
    expect(lines).toHaveLength(0);
  });
});
