import type { QRange } from '../math.js';
import type { ActivationFormat, TensorRange } from '../types.js';
import type { TensorHistogram } from './histogram.js';

/** Candidate bin edges tried per side. */
const STEPS = 512;

/**
 * The range with the smallest expected squared error: rounding noise s²/12 for every non-zero value
 * inside [lo, hi] (s = (hi − lo) / (qmax − qmin)) plus (x − hi)² / (lo − x)² for the values clipped.
 * Values are taken at their bin centres; exact zeros cost nothing. Prefix sums make each candidate
 * O(1), so a full grid over both sides is cheap.
 */
export function mseRange(h: TensorHistogram, format: ActivationFormat, range: QRange): TensorRange {
  if (h.count === 0) return { min: 0, max: 0 };
  const levels = range.qmax - range.qmin;
  const w = h.binWidth;
  if (format.symmetric) {
    const side = tails(h.magnitudes(false), w);
    const inside = h.count - h.zeros;
    let best = { err: Infinity, t: h.limit };
    for (const k of candidates(side.last)) {
      const t = (k + 1) * w;
      const s = (2 * t) / levels;
      const clipped = side.clipError(k + 1, t);
      const err = (inside - side.countFrom[k + 1]!) * (s * s) / 12 + clipped;
      if (err < best.err) best = { err, t };
    }
    return { min: Math.max(h.min, -best.t), max: Math.min(h.max, best.t) };
  }
  const pos = tails(h.positive, w);
  const neg = tails(h.negative, w);
  const nonZero = h.count - h.zeros;
  const hiCandidates = pos.last >= 0 ? candidates(pos.last) : [-1];
  const loCandidates = neg.last >= 0 ? candidates(neg.last) : [-1];
  let best = { err: Infinity, lo: 0, hi: 0 };
  for (const kh of hiCandidates) {
    const hi = (kh + 1) * w;
    const clipHi = kh >= 0 ? pos.clipError(kh + 1, hi) : 0;
    const outHi = kh >= 0 ? pos.countFrom[kh + 1]! : 0;
    for (const kl of loCandidates) {
      const lo = (kl + 1) * w;
      const clipLo = kl >= 0 ? neg.clipError(kl + 1, lo) : 0;
      const outLo = kl >= 0 ? neg.countFrom[kl + 1]! : 0;
      const s = (hi + lo) / levels;
      const err = (nonZero - outHi - outLo) * (s * s) / 12 + clipHi + clipLo;
      if (err < best.err) best = { err, lo: kl >= 0 ? -lo : 0, hi: kh >= 0 ? hi : 0 };
    }
  }
  return { min: Math.max(h.min, best.lo), max: Math.min(h.max, best.hi) };
}

/** Bin indices to try as the last bin inside the range: up to STEPS of them, always including `last`. */
function candidates(last: number): number[] {
  const stride = Math.max(1, Math.ceil((last + 1) / STEPS));
  const out: number[] = [];
  for (let k = last; k >= 0; k -= stride) out.push(k);
  return out;
}

interface Tails {
  last: number;
  /** countFrom[k] = values in bins ≥ k; sum1From / sum2From: Σ x and Σ x² over them (bin centres). */
  countFrom: Float64Array;
  clipError(fromBin: number, threshold: number): number;
}

function tails(counts: Float64Array, w: number): Tails {
  const n = counts.length;
  const countFrom = new Float64Array(n + 1);
  const sum1From = new Float64Array(n + 1);
  const sum2From = new Float64Array(n + 1);
  let last = -1;
  for (let k = n - 1; k >= 0; k--) {
    const c = counts[k]!;
    if (c > 0 && last < 0) last = k;
    const x = (k + 0.5) * w;
    countFrom[k] = countFrom[k + 1]! + c;
    sum1From[k] = sum1From[k + 1]! + c * x;
    sum2From[k] = sum2From[k + 1]! + c * x * x;
  }
  return {
    last,
    countFrom,
    // Σ c (x − t)² over bins ≥ fromBin = Σcx² − 2tΣcx + t²Σc.
    clipError: (fromBin, t) => Math.max(0, sum2From[fromBin]! - 2 * t * sum1From[fromBin]! + t * t * countFrom[fromBin]!),
  };
}
