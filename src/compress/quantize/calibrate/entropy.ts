import type { ActivationFormat, TensorRange } from '../types.js';
import type { TensorHistogram } from './histogram.js';

/** Candidate thresholds tried per tensor; the search costs O(candidates × bins). */
const MAX_CANDIDATES = 512;
/** The KL search works on at most this many bins (pairs merged), as in TensorRT's 2048. */
const SEARCH_BINS = 2048;

/**
 * Entropy (KL divergence) calibration, after TensorRT: for each candidate threshold t, P is the
 * histogram up to t with everything beyond folded into its last bin, Q the same values squeezed into
 * the quantization levels that [0, t] gets and spread back; the threshold with the smallest KL(P‖Q)
 * wins. A non-negative tensor gets every level of an asymmetric type on [0, t]; otherwise |x| is
 * searched with half the levels per side.
 */
export function entropyRange(h: TensorHistogram, format: ActivationFormat): TensorRange {
  if (h.count === 0) return { min: 0, max: 0 };
  const oneSided = h.min >= 0 && !format.symmetric;
  const levels = oneSided ? 256 : 128;
  // Exact zeros (often half of a ReLU output) are left out: they quantize exactly whatever the
  // threshold, and as a spike in bin 0 they would make every wide threshold look bad (smeared over a
  // wide first level), pulling the range down to a fraction of the data.
  const counts = mergeBins(oneSided ? h.positive : h.magnitudes(false), SEARCH_BINS);
  const width = h.limit / counts.length;
  const t = klThreshold(counts, levels) * width;
  return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
}

function mergeBins(counts: Float64Array, target: number): Float64Array {
  if (counts.length <= target) return counts;
  const factor = counts.length / target;
  const out = new Float64Array(target);
  for (let k = 0; k < counts.length; k++) out[Math.floor(k / factor)]! += counts[k]!;
  return out;
}

/** The number of bins (from the start) whose upper edge is the best threshold. */
export function klThreshold(counts: Float64Array, levels: number): number {
  let used = counts.length;
  while (used > 0 && counts[used - 1] === 0) used--;
  // Candidates start `levels` bins past the first non-empty one: a threshold just above a lone low
  // value (a sigmoid gate at 0.3 below a mass at [0.4, 0.62]) folds everything into one bin of P and
  // one of Q, a KL of 0 that would win and clip 100 % of the values.
  let first = 0;
  while (first < used && counts[first] === 0) first++;
  const start = first + levels;
  if (used <= start) return used;
  const stride = Math.max(1, Math.floor((used - start) / MAX_CANDIDATES));
  let best = used;
  let bestKl = Infinity;
  const p = new Float64Array(used);
  const q = new Float64Array(used);
  for (let i = start; i <= used; i += stride) {
    const kl = klAt(counts, i, levels, used, p, q);
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  if (best !== used && (used - start) % stride !== 0) {
    const kl = klAt(counts, used, levels, used, p, q);
    if (kl < bestKl) best = used;
  }
  return best;
}

/** KL(P‖Q) for the threshold at bin edge i. p and q are scratch arrays of length ≥ i. */
function klAt(counts: Float64Array, i: number, levels: number, used: number, p: Float64Array, q: Float64Array): number {
  let outliers = 0;
  for (let k = i; k < used; k++) outliers += counts[k]!;
  let pTotal = 0;
  for (let k = 0; k < i; k++) {
    p[k] = counts[k]!;
    pTotal += p[k]!;
  }
  p[i - 1]! += outliers;
  pTotal += outliers;
  // Q: bins [0, i) merged into `levels` groups, each group's mass spread over its non-empty bins.
  const perLevel = i / levels;
  let qTotal = 0;
  for (let j = 0; j < levels; j++) {
    const start = Math.floor(j * perLevel);
    const end = j === levels - 1 ? i : Math.floor((j + 1) * perLevel);
    let mass = 0;
    let nonEmpty = 0;
    for (let k = start; k < end; k++) {
      mass += counts[k]!;
      if (counts[k] !== 0) nonEmpty++;
    }
    const share = nonEmpty > 0 ? mass / nonEmpty : 0;
    for (let k = start; k < end; k++) q[k] = counts[k] !== 0 ? share : 0;
    qTotal += mass;
  }
  if (pTotal === 0 || qTotal === 0) return Infinity;
  let kl = 0;
  for (let k = 0; k < i; k++) {
    const pk = p[k]! / pTotal;
    if (pk === 0) continue;
    // A bin that P has but Q lost (only the outlier bin can) gets a tiny mass instead of ∞.
    const qk = q[k]! > 0 ? q[k]! / qTotal : 1e-12;
    kl += pk * Math.log(pk / qk);
  }
  return kl;
}
