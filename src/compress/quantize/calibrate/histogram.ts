/**
 * The one statistics collector behind every calibration method: exact min/max, and a histogram of
 * magnitudes per sign whose memory is fixed (2 × bins counts) whatever the number of values added.
 *
 * Bins cover [0, limit) with width limit / bins. The first non-zero batch sets the limit to its largest
 * magnitude; a later batch that goes beyond doubles the limit (repeatedly) and merges bin pairs, which
 * is exact because the new bins are unions of old ones. The resolution is therefore at worst 2× coarser
 * than a histogram built with the final maximum known up front, without a second pass over the data.
 * Exact zeros (ReLU outputs, padding) are counted apart: they quantize without error whatever the range.
 */
export class TensorHistogram {
  /** Counts of positive values by magnitude bin. */
  readonly positive: Float64Array;
  /** Counts of negative values by magnitude bin. */
  readonly negative: Float64Array;
  limit = 0;
  zeros = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;
  /** NaN and ±Infinity seen (never binned). */
  nonFinite = 0;

  constructor(readonly bins: number) {
    if (!Number.isInteger(bins) || bins < 2 || bins % 2 !== 0) throw new RangeError(`histogram bins must be an even number ≥ 2, got ${bins}`);
    this.positive = new Float64Array(bins);
    this.negative = new Float64Array(bins);
  }

  get binWidth(): number {
    return this.limit / this.bins;
  }

  /** Bytes held, constant after construction: what makes calibration memory independent of the data size. */
  get bytes(): number {
    return this.positive.byteLength + this.negative.byteLength;
  }

  add(data: ArrayLike<number>): void {
    let lo = Infinity;
    let hi = -Infinity;
    let bad = 0;
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
      if (x - x !== 0) bad++; // NaN or ±Infinity
    }
    if (bad > 0) {
      this.nonFinite += bad;
      return;
    }
    if (data.length === 0) return;
    this.min = Math.min(this.min, lo);
    this.max = Math.max(this.max, hi);
    this.count += data.length;
    const absmax = Math.max(-lo, hi);
    if (absmax > this.limit) this.grow(absmax);
    if (this.limit === 0) {
      this.zeros += data.length;
      return;
    }
    const { positive, negative, bins } = this;
    const last = bins - 1;
    const inverse = bins / this.limit;
    let zeros = 0;
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (x > 0) {
        const k = (x * inverse) | 0;
        positive[k > last ? last : k]!++;
      } else if (x < 0) {
        const k = (-x * inverse) | 0;
        negative[k > last ? last : k]!++;
      } else {
        zeros++;
      }
    }
    this.zeros += zeros;
  }

  private grow(absmax: number): void {
    if (this.limit === 0) {
      this.limit = absmax;
      return;
    }
    let limit = this.limit;
    let factor = 1;
    while (limit < absmax) {
      limit *= 2;
      factor *= 2;
    }
    for (const counts of [this.positive, this.negative]) {
      for (let k = 0; k < this.bins; k++) {
        const target = Math.floor(k / factor);
        if (target === k) continue;
        counts[target]! += counts[k]!;
        counts[k] = 0;
      }
    }
    this.limit = limit;
  }

  /** Upper edge of bin k. */
  edge(k: number): number {
    return (k + 1) * this.binWidth;
  }

  /** Index of the last non-empty bin of one side, or −1. */
  lastBin(side: 'positive' | 'negative'): number {
    const counts = this[side];
    for (let k = this.bins - 1; k >= 0; k--) if (counts[k]! > 0) return k;
    return -1;
  }

  /** Counts of |x| (both signs) by bin, exact zeros in bin 0 when asked. */
  magnitudes(withZeros: boolean): Float64Array {
    const out = new Float64Array(this.bins);
    for (let k = 0; k < this.bins; k++) out[k] = this.positive[k]! + this.negative[k]!;
    if (withZeros) out[0]! += this.zeros;
    return out;
  }
}
