import { describeValue, recordableRequest, validateReplayRequest } from '../../src/workflows/requests';

describe('replay requests', () => {
  it('accepts any whole version of 0 or more: the rewind checks it against the live latest version', () => {
    expect(validateReplayRequest({ fromVersion: 123_456 })).toEqual({ fromVersion: 123_456 });
  });

  it('keeps redispatch: true, and drops the default false', () => {
    expect(validateReplayRequest({ fromVersion: 3, redispatch: true })).toEqual({ fromVersion: 3, redispatch: true });
    expect(validateReplayRequest({ fromVersion: 3, redispatch: false })).toEqual({ fromVersion: 3 });
  });

  it('refuses a redispatch that is not true or false', () => {
    expect(() => validateReplayRequest({ fromVersion: 3, redispatch: 'yes' })).toThrow('redispatch must be true or false, got "yes"');
  });

  it('refuses a negative version with the fix', () => {
    expect(() => validateReplayRequest({ fromVersion: -1 })).toThrow('fromVersion must be 0 or more, got -1');
  });

  it('quotes at most 100 characters of an oversized value in its refusal', () => {
    const huge = 'x'.repeat(200_000);
    const error = (() => {
      try {
        validateReplayRequest({ fromVersion: huge });
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    expect(error.message.length).toBeLessThan(250);
    expect(error.message).toContain('(200002 characters)');
  });

  it('keeps a small refused request as it is and an oversized one as cut text', () => {
    expect(recordableRequest({ fromVersion: -1 })).toEqual({ fromVersion: -1 });
    expect(String(recordableRequest({ reason: 'y'.repeat(5000) })).length).toBeLessThan(1100);
    expect(describeValue('short')).toBe('"short"');
  });
});
