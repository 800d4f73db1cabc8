import { planRanges } from '../../src/workflows/ranges';

/** Small deterministic PRNG (mulberry32) so a failing property case can be reproduced from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Inclusive list from..to; empty when to < from. */
function versionsBetween(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

describe('planRanges', () => {
  it('returns no ranges when the next version is past the latest', () => {
    expect(planRanges(6, 5, 100)).toEqual([]);
  });

  it('returns no ranges for a table that has no versions to read yet', () => {
    expect(planRanges(0, -1, 10)).toEqual([]);
  });

  it('returns one range when the gap fits in one', () => {
    expect(planRanges(3, 7, 100)).toEqual([{ fromVersion: 3, toVersion: 7 }]);
  });

  it('returns a one-version range when only the latest version is new', () => {
    expect(planRanges(5, 5, 100)).toEqual([{ fromVersion: 5, toVersion: 5 }]);
  });

  it('splits a gap that is an exact multiple of the range size into full ranges', () => {
    expect(planRanges(0, 8, 3)).toEqual([
      { fromVersion: 0, toVersion: 2 },
      { fromVersion: 3, toVersion: 5 },
      { fromVersion: 6, toVersion: 8 },
    ]);
  });

  it('puts the remainder in a shorter last range', () => {
    expect(planRanges(10, 20, 4)).toEqual([
      { fromVersion: 10, toVersion: 13 },
      { fromVersion: 14, toVersion: 17 },
      { fromVersion: 18, toVersion: 20 },
    ]);
  });

  it('covers next..latest exactly once, in order, with ranges no longer than the maximum, for random inputs', () => {
    const random = seededRandom(20240611);
    const problems: string[] = [];
    for (let trial = 0; trial < 2000; trial++) {
      const next = randomInt(random, 0, 500);
      const latest = randomInt(random, next - 3, next + 400);
      const max = randomInt(random, 1, 60);
      const ranges = planRanges(next, latest, max);

      const covered = ranges.flatMap((r) => versionsBetween(r.fromVersion, r.toVersion));
      const tooLong = ranges.filter((r) => r.toVersion - r.fromVersion + 1 > max || r.toVersion < r.fromVersion);
      if (covered.join() !== versionsBetween(next, latest).join() || tooLong.length > 0) {
        problems.push(`planRanges(${next}, ${latest}, ${max}) = ${JSON.stringify(ranges)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each([
    ['a negative next version', -1, 5, 10],
    ['a fractional next version', 1.5, 5, 10],
    ['a NaN latest version', 0, Number.NaN, 10],
    ['an unsafe latest version', 0, Number.MAX_SAFE_INTEGER + 1, 10],
    ['a zero range size', 0, 5, 0],
    ['a negative range size', 0, 5, -2],
    ['a fractional range size', 0, 5, 2.5],
  ])('throws a RangeError for %s', (_case, next, latest, max) => {
    expect(() => planRanges(next, latest, max)).toThrow(RangeError);
  });
});
