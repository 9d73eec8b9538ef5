import type { TensorRange } from '../types.js';
import type { TensorHistogram } from './histogram.js';

/** The exact smallest and largest values seen: no clipping, so one outlier widens every step. */
export function minMaxRange(h: TensorHistogram): TensorRange {
  return h.count > 0 ? { min: h.min, max: h.max } : { min: 0, max: 0 };
}
