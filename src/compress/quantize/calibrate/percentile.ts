import type { ActivationFormat, TensorRange } from '../types.js';
import type { TensorHistogram } from './histogram.js';

/**
 * Clip the (100 − p) % most extreme values. The clipping budget is split evenly between the sides
 * that hold data (all of it on the upper side for a non-negative tensor such as a ReLU output); a
 * symmetric format clips |x| instead. Thresholds are bin upper edges, never beyond the exact min/max.
 */
export function percentileRange(h: TensorHistogram, percentile: number, format: ActivationFormat): TensorRange {
  if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${percentile}`);
  if (h.count === 0) return { min: 0, max: 0 };
  const budget = (1 - percentile / 100) * h.count;
  if (format.symmetric) {
    const t = tailThreshold(h.magnitudes(false), budget, h);
    return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
  }
  const sides = (h.min < 0 ? 1 : 0) + (h.max > 0 ? 1 : 0);
  const share = sides > 0 ? budget / sides : 0;
  const max = h.max > 0 ? Math.min(h.max, tailThreshold(h.positive, share, h)) : h.max;
  const min = h.min < 0 ? Math.max(h.min, -tailThreshold(h.negative, share, h)) : h.min;
  return { min, max };
}

/** The smallest bin edge t with at most `budget` values beyond it. */
export function tailThreshold(counts: Float64Array, budget: number, h: TensorHistogram): number {
  let above = 0;
  for (let k = counts.length - 1; k >= 0; k--) {
    if (above + counts[k]! > budget) return h.edge(k);
    above += counts[k]!;
  }
  return 0;
}
