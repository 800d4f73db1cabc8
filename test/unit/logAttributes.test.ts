import { pipelineKeys } from '../../src/activities/logAttributes';

describe('the pipeline keys an activity\'s log lines carry', () => {
  it('are the source of a capture activity', () => {
    expect(pipelineKeys({ source: 'orders', fromVersion: 3, toVersion: 5 })).toEqual({ source: 'orders' });
  });

  it('are the run key and batch number of a fan-in batch activity', () => {
    expect(pipelineKeys({ runKey: 'fi-20261204-ab', batchNumber: 7, attempt: 2 })).toEqual({ runKey: 'fi-20261204-ab', batchNumber: 7 });
  });

  it('are nothing for an input without them, or no object at all', () => {
    expect(pipelineKeys({ limit: 10 })).toEqual({});
    expect(pipelineKeys(undefined)).toEqual({});
    expect(pipelineKeys('orders')).toEqual({});
  });

  it('ignore keys of the wrong type rather than log them', () => {
    expect(pipelineKeys({ source: { name: 'orders' }, runKey: 12, batchNumber: '3' })).toEqual({});
  });
});
