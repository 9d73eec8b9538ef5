/**
 * The one statistics collector behind every calibration method: exact min/max, and a histogram of
 * magnitudes per sign whose memory is fixed (2 × bins counts) whatever the number of values added.
 *
 * Bins cover [0, limit) with width limit / bins. The first non-zero batch sets the limit just above its
 * largest magnitude; a later batch that goes beyond doubles the limit (repeatedly) and merges bin pairs, which
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

  /**
   * One pass: values inside the current limit are binned directly; the (rare) values beyond it are set
   * aside, the limit grows once for the largest of them, and they are binned after.
   */
  add(data: ArrayLike<number>): void {
    const n = data.length;
    if (n === 0) return;
    if (this.limit === 0) {
      let absmax = 0;
      for (let i = 0; i < n; i++) {
        const a = Math.abs(data[i]!);
        if (a > absmax && a < Infinity) absmax = a;
      }
      if (absmax > 0) this.grow(absmax);
    }
    const { positive, negative, bins } = this;
    let inverse = this.limit > 0 ? bins / this.limit : 0;
    let lo = this.min;
    let hi = this.max;
    let zeros = 0;
    let bad = 0;
    const beyond: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = data[i]!;
      if (x > 0) {
        const f = x * inverse;
        if (f < bins) positive[f | 0]!++;
        else beyond.push(x);
        if (x > hi) hi = x;
        if (x < lo) lo = x;
      } else if (x < 0) {
        const f = -x * inverse;
        if (f < bins) negative[f | 0]!++;
        else beyond.push(x);
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      } else if (x === 0) {
        zeros++;
      } else {
        bad++; // NaN
      }
    }
    let binned = n - bad;
    if (beyond.length > 0) {
      let absmax = 0;
      for (const x of beyond) if (Number.isFinite(x)) absmax = Math.max(absmax, Math.abs(x));
      if (absmax > 0 && absmax >= this.limit) this.grow(absmax);
      inverse = bins / this.limit;
      for (const x of beyond) {
        if (!Number.isFinite(x)) {
          bad++;
          binned--;
          continue;
        }
        const k = Math.min(bins - 1, (Math.abs(x) * inverse) | 0);
        (x > 0 ? positive : negative)[k]!++;
      }
      if (lo === -Infinity || hi === Infinity) {
        // ±Infinity took part in the running min/max: recompute them from the finite values.
        lo = this.min;
        hi = this.max;
        for (let i = 0; i < n; i++) {
          const x = data[i]!;
          if (Number.isFinite(x)) {
            if (x < lo) lo = x;
            if (x > hi) hi = x;
          }
        }
      }
    }
    if (zeros > 0) {
      if (lo > 0) lo = 0;
      if (hi < 0) hi = 0;
    }
    this.nonFinite += bad;
    this.zeros += zeros;
    this.count += binned;
    if (binned > 0) {
      this.min = lo;
      this.max = hi;
    }
  }

  private grow(absmax: number): void {
    if (this.limit === 0) {
      // Just above the largest magnitude, so that it falls inside the last bin rather than on its edge
      // (which keeps every later merge an exact union of bins).
      this.limit = absmax * (1 + 2 ** -20);
      return;
    }
    let limit = this.limit;
    let factor = 1;
    while (limit <= absmax) {
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
