import { FanInTriggerState, type ChangesCaptured } from '../../src/workflows/fanInTriggerState';

const settings = { waitAfterLastChangeSeconds: 2, maxWaitSeconds: 10, minSecondsBetweenRuns: 0 };
const change = (source: string, offsetVersion: number): ChangesCaptured => ({ source, offsetVersion, ...settings });

describe('the fan-in trigger state', () => {
  it('is due once changes have been quiet for the debounce', () => {
    const state = new FanInTriggerState();
    state.changeCaptured(change('orders', 1), 1_000);
    state.changeCaptured(change('orders', 2), 2_000);
    expect(state.fanInDueAt()).toBe(4_000);
  });

  it('is due at the maximum wait after the first pending change while changes keep coming', () => {
    const state = new FanInTriggerState();
    for (let at = 0; at <= 20_000; at += 100) state.changeCaptured(change('orders', at), at);
    expect(state.fanInDueAt()).toBe(10_000);
  });

  it('keeps the latest offset of each source and the first arrival when a joined fan-in puts its changes back', () => {
    const state = new FanInTriggerState();
    state.changeCaptured(change('orders', 3), 1_000);
    const covered = state.startRun(1_500, 'cdf-fan-in');
    state.fanInStarted({ workflowId: 'cdf-fan-in', joined: true });
    state.changeCaptured(change('orders', 2), 5_000);
    state.fanInEnded({ workflowId: 'cdf-fan-in', joined: true, summary: { changedIds: 0, batches: 0 } as never }, covered);
    expect(state.carry()).toMatchObject({ pending: { offsets: { orders: 3 }, firstAt: 1_000, lastAt: 5_000 }, running: null });
  });

  it('carries pending changes, the fan-in in flight and its settings into a new run unchanged', () => {
    const state = new FanInTriggerState();
    state.changeCaptured(change('orders', 1), 1_000);
    state.startRun(3_000, 'cdf-fan-in');
    state.fanInStarted({ workflowId: 'cdf-fan-in', joined: false });
    state.changeCaptured(change('customers', 7), 4_000);
    const next = new FanInTriggerState(JSON.parse(JSON.stringify(state.carry())));
    expect(next.carry()).toEqual(state.carry());
    expect(next.status()).toMatchObject({ pendingSources: ['customers'], fanInInFlight: 'cdf-fan-in', runsStarted: 1, firstPendingChangeAt: new Date(4_000).toISOString() });
    expect(next.fanInDueAt()).toBe(6_000);
  });

  it('waits out the backoff of a failed fan-in before the next try, with its changes pending again', () => {
    const state = new FanInTriggerState();
    state.changeCaptured(change('orders', 1), 1_000);
    const covered = state.startRun(3_000, 'cdf-fan-in');
    expect(state.fanInFailed(covered, 4_000)).toBe(1);
    expect(state.fanInDueAt()).toBe(9_000);
  });

  it('bounds the debounce at a minute for a signal from a worker that predates maxWaitSeconds', () => {
    const state = new FanInTriggerState();
    for (let at = 0; at <= 90_000; at += 1_000) state.changeCaptured({ source: 'orders', offsetVersion: at, waitAfterLastChangeSeconds: 2, minSecondsBetweenRuns: 0 }, at);
    expect(state.fanInDueAt()).toBe(60_000);
  });
});
