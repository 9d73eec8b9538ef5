/**
 * How much faster one model is than another. Models `slim bench` timed together took turns of the same
 * rounds (runtime/benchmark-turns.ts), so each round gives a ratio of the two under the same load; the
 * median of those ratios holds when the machine's load changed during the timing, where the ratio of the
 * two p50s does not (with load for half the time, each p50 can land in either half). Rows without turn
 * p50s (older manifests, the browser), or from separate timings, fall back to the ratio of the p50s.
 */
import { percentile } from '../runtime/percentiles.js';

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

function median(sorted: readonly number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function latencyRatio(a: TimedRow, b: TimedRow): LatencyRatio {
  const ta = a.turn_p50_ms;
  const tb = b.turn_p50_ms;
  if (!ta || !tb || ta.length !== tb.length || ta.length === 0) return { ratio: a.latency_ms.p50 / b.latency_ms.p50 };
  const ratios = ta.map((x, r) => x / tb[r]!).sort((x, y) => x - y);
  return { ratio: median(ratios), spread: [percentile(ratios, 25), percentile(ratios, 75)] };
}
