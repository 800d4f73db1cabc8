/**
 * Cuts the versions from `nextVersion` through `latestVersion` into inclusive ranges of at most
 * `maxVersionsPerRange` versions. Empty when nothing is new: asking Delta for a start past the
 * latest version is an error (DELTA_CDC_START_VERSION_AFTER_LATEST), not an empty result.
 */
export function planRanges(nextVersion: number, latestVersion: number, maxVersionsPerRange: number): { fromVersion: number; toVersion: number }[] {
  if (!Number.isSafeInteger(nextVersion) || !Number.isSafeInteger(latestVersion) || nextVersion < 0) {
    throw new RangeError(`versions must be non-negative integers (next ${nextVersion}, latest ${latestVersion})`);
  }
  if (!Number.isSafeInteger(maxVersionsPerRange) || maxVersionsPerRange < 1) {
    throw new RangeError(`maxVersionsPerRange must be a positive integer, got ${maxVersionsPerRange}`);
  }
  const ranges: { fromVersion: number; toVersion: number }[] = [];
  for (let from = nextVersion; from <= latestVersion; from += maxVersionsPerRange) {
    ranges.push({ fromVersion: from, toVersion: Math.min(from + maxVersionsPerRange - 1, latestVersion) });
  }
  return ranges;
}
