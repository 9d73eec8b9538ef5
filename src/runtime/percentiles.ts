/**
 * Latency percentiles by the nearest-rank method: with n samples sorted ascending, the p-th percentile
 * is the sample at 1-based rank ceil(p/100 · n). It is always a measured value (no interpolation), so
 * p50 ≤ p90 ≤ p99 ≤ max hold by construction; with 100 runs p99 is the second-slowest run.
 */

export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of an ascending, non-empty list (see the module comment). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty list');
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function latencyStats(sorted: readonly number[]): LatencyStats {
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((a, v) => a + v, 0) / sorted.length,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

