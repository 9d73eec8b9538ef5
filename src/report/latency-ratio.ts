/**
 * How much faster one model is than another. Models `slim bench` timed together took turns of the same
 * rounds (runtime/benchmark-turns.ts), so each round gives a ratio of the two under the same load; the
 * median of those ratios holds when the machine's load changed during the timing, where the ratio of the
 * two p50s does not (with load for half the timing, each p50 can land in either half). Rows without turn
 * p50s (older manifests, the browser, one model), or from timings of another round count, fall back to
 * the ratio of the p50s.
 *
 * The median is taken of log-ratios, so a vs b is exactly the inverse of b vs a (with an even round count
 * the plain median of ratios is not).
 */

export interface TimedRow {
  latency_ms: { p50: number };
  /** The p50 of each turn, in round order (BenchRow.turn_p50_ms). */
  turn_p50_ms?: number[];
}

export interface LatencyRatio {
  /** a's latency over b's: 0.5 means a takes half b's time. */
  ratio: number;
  /** Quartiles of the per-round ratios; absent when the ratio is one of p50s. */
  spread?: [number, number];
}

/** Quantile by linear interpolation between order statistics (symmetric under negation; 0.5: the median). */
function quantile(sorted: readonly number[], q: number): number {
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (at - lo);
}

/** Both rows took the same rounds of turns: a per-round comparison is possible. */
export function pairedTurns(a: TimedRow, b: TimedRow): boolean {
  return !!a.turn_p50_ms && !!b.turn_p50_ms && a.turn_p50_ms.length > 0 && a.turn_p50_ms.length === b.turn_p50_ms.length;
}

export function latencyRatio(a: TimedRow, b: TimedRow): LatencyRatio {
  if (!pairedTurns(a, b)) return { ratio: a.latency_ms.p50 / b.latency_ms.p50 };
  const tb = b.turn_p50_ms!;
  const logs = a.turn_p50_ms!.map((x, r) => Math.log(x / tb[r]!)).sort((x, y) => x - y);
  return { ratio: Math.exp(quantile(logs, 0.5)), spread: [Math.exp(quantile(logs, 0.25)), Math.exp(quantile(logs, 0.75))] };
}

/**
 * The timing cannot tell a and b apart: they took the same rounds and the quartiles of their per-round
 * ratio hold 1 (identical architectures, say). Without turns there is no spread to judge by: never tied.
 */
export function latencyTied(a: TimedRow, b: TimedRow): boolean {
  const { spread } = latencyRatio(a, b);
  return spread !== undefined && spread[0] <= 1 && spread[1] >= 1;
}

/**
 * One latency per row on a common scale, for ranking, Pareto fronts and "N× faster": the first row
 * with turns keeps its p50, and each row timed in the same rounds gets that p50 times its per-round ratio
 * to it (others keep their p50). Comparisons through one reference are consistent with each other, where
 * pairwise medians need not be.
 */
export function comparableLatencies<T extends TimedRow>(rows: readonly T[]): Map<T, number> {
  const reference = rows.find((r) => r.turn_p50_ms?.length);
  return new Map(rows.map((r) => [r, reference && r !== reference && pairedTurns(r, reference) ? reference.latency_ms.p50 * latencyRatio(r, reference).ratio : r.latency_ms.p50]));
}
