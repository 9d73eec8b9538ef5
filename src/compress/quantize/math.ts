/**
 * Quantization arithmetic, pure and documented (no graph, no IO).
 *
 *   q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)      (ONNX QuantizeLinear)
 *   x ≈ (q − zero_point) · scale                                        (ONNX DequantizeLinear)
 *
 * Scales are float32 in the model, so every scale is rounded to float32 (Math.fround) the moment it is
 * made, and all quantization here divides by that float32 value, as ONNX Runtime does.
 */

/** Integer types a tensor can be quantized to. */
export type QuantType = 'uint8' | 'int8' | 'int32';

export interface QRange {
  qmin: number;
  qmax: number;
}

export interface RangeOptions {
  /** Zero point fixed at the middle: int8 uses [−127, 127] so that 0 is exact and ±max are symmetric. */
  symmetric?: boolean;
  /**
   * 7-bit values, for x86 CPUs without VNNI: their u8×s8 multiply-add (vpmaddubsw) saturates int16
   * when two products of full-range values are summed.
   */
  reduceRange?: boolean;
}

/** qmin/qmax per type and mode (the same table as ONNX Runtime's quantizer). */
const RANGES: Record<QuantType, { full: QRange; symmetric: QRange; reduced: QRange; reducedSymmetric: QRange }> = {
  uint8: { full: { qmin: 0, qmax: 255 }, symmetric: { qmin: 0, qmax: 255 }, reduced: { qmin: 0, qmax: 127 }, reducedSymmetric: { qmin: 0, qmax: 127 } },
  int8: { full: { qmin: -128, qmax: 127 }, symmetric: { qmin: -127, qmax: 127 }, reduced: { qmin: -64, qmax: 64 }, reducedSymmetric: { qmin: -64, qmax: 64 } },
  int32: {
    full: { qmin: -(2 ** 31), qmax: 2 ** 31 - 1 },
    symmetric: { qmin: -(2 ** 31 - 1), qmax: 2 ** 31 - 1 },
    reduced: { qmin: -(2 ** 31), qmax: 2 ** 31 - 1 },
    reducedSymmetric: { qmin: -(2 ** 31 - 1), qmax: 2 ** 31 - 1 },
  },
};

export function qRange(type: QuantType, options: RangeOptions = {}): QRange {
  const row = RANGES[type];
  if (options.reduceRange) return options.symmetric ? row.reducedSymmetric : row.reduced;
  return options.symmetric ? row.symmetric : row.full;
}

export interface ScaleZeroPoint {
  /** A float32 value (already rounded). */
  scale: number;
  zeroPoint: number;
}

/**
 * The scale and zero point that map [rmin, rmax] onto [qmin, qmax]. The range is first widened to hold
 * 0 (so that 0 — padding, ReLU zeros — is exact). Symmetric: ±max(|rmin|, |rmax|) with the zero point
 * at the middle of [qmin, qmax] (0 for int8, 128 for uint8). Asymmetric: zero point =
 * round(qmin − rmin / scale), clamped. An empty range (rmin = rmax = 0) gets scale 1.
 */
export function computeScaleZeroPoint(rmin: number, rmax: number, range: QRange, symmetric: boolean): ScaleZeroPoint {
  if (!Number.isFinite(rmin) || !Number.isFinite(rmax) || rmin > rmax) {
    throw new RangeError(`invalid range [${rmin}, ${rmax}]: calibration saw no finite values`);
  }
  let lo = Math.min(rmin, 0);
  let hi = Math.max(rmax, 0);
  const { qmin, qmax } = range;
  if (symmetric) {
    const absmax = Math.max(-lo, hi);
    lo = -absmax;
    hi = absmax;
  }
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  // A subnormal or zero scale would divide to Infinity: treat as an all-zero tensor.
  if (!(scale >= 1e-30)) return { scale: 1, zeroPoint: symmetric ? roundHalfEven((qmin + qmax) / 2) : clampInt(qmin - lo, qmin, qmax) };
  if (symmetric) return { scale, zeroPoint: roundHalfEven((qmin + qmax) / 2) };
  return { scale, zeroPoint: clampInt(roundHalfEven(qmin - lo / scale), qmin, qmax) };
}

/** Round half to even, as ONNX QuantizeLinear (and numpy.rint) do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends .5 up; step back to the even neighbour on exact ties.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clampInt(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** QuantizeLinear of one value. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, range: QRange): number {
  // The quotient in float32, as QuantizeLinear computes it: in float64 a value like −71.49999695 rounds
  // to −71 where ONNX Runtime's −71.5 rounds (half to even) to −72 (1 weight in ~175k).
  return clampInt(roundHalfEven(Math.fround(x / scale)) + zeroPoint, range.qmin, range.qmax);
}

/** DequantizeLinear ∘ QuantizeLinear of one value: what the int8 model sees instead of x. */
export function fakeQuantize(x: number, scale: number, zeroPoint: number, range: QRange): number {
  return (quantizeValue(x, scale, zeroPoint, range) - zeroPoint) * scale;
}

/** The [lo, hi] a (scale, zero point) pair can represent. */
export function representableRange(p: ScaleZeroPoint, range: QRange): [number, number] {
  return [(range.qmin - p.zeroPoint) * p.scale, (range.qmax - p.zeroPoint) * p.scale];
}

/** Channel count and the stride pattern of `axis` in a row-major tensor of `dims`. */
export function axisLayout(dims: readonly number[], axis: number): { channels: number; inner: number; outer: number } {
  const channels = dims[axis] ?? 1;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= dims[i]!;
  return { channels, inner, outer };
}

/** max |x| per channel along `axis` (one value for the whole tensor when axis is undefined). */
export function absMaxPerChannel(data: Float32Array, dims: readonly number[], axis: number | undefined): Float64Array {
  if (axis === undefined) {
    let m = 0;
    for (let i = 0; i < data.length; i++) m = Math.max(m, Math.abs(data[i]!));
    return Float64Array.of(m);
  }
  const { channels, inner, outer } = axisLayout(dims, axis);
  const out = new Float64Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let m = out[c]!;
      for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(data[base + i]!));
      out[c] = m;
    }
  }
  return out;
}

/**
 * Quantize a weight with one (scale, zero point) per channel along `axis` (or one for the whole tensor).
 * Returns the integer values as plain numbers; the caller picks the typed array.
 */
export function quantizeArray(
  data: Float32Array,
  dims: readonly number[],
  axis: number | undefined,
  params: readonly ScaleZeroPoint[],
  range: QRange,
): Int32Array {
  const out = new Int32Array(data.length);
  if (axis === undefined) {
    const { scale, zeroPoint } = params[0]!;
    for (let i = 0; i < data.length; i++) out[i] = quantizeValue(data[i]!, scale, zeroPoint, range);
    return out;
  }
  const { channels, inner, outer } = axisLayout(dims, axis);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const { scale, zeroPoint } = params[c]!;
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) out[base + i] = quantizeValue(data[base + i]!, scale, zeroPoint, range);
    }
  }
  return out;
}

/** (q − zero point) · scale for every element: the float values a quantized weight stands for. */
export function dequantizeArray(
  q: ArrayLike<number>,
  dims: readonly number[],
  axis: number | undefined,
  params: readonly ScaleZeroPoint[],
): Float32Array {
  const out = new Float32Array(q.length);
  if (axis === undefined) {
    const { scale, zeroPoint } = params[0]!;
    for (let i = 0; i < q.length; i++) out[i] = (q[i]! - zeroPoint) * scale;
    return out;
  }
  const { channels, inner, outer } = axisLayout(dims, axis);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const { scale, zeroPoint } = params[c]!;
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) out[base + i] = (q[base + i]! - zeroPoint) * scale;
    }
  }
  return out;
}

/** Signal-to-quantization-noise ratio in dB: 10·log10(Σx² / Σ(x − y)²); Infinity when y = x. */
export function sqnrDb(signalPower: number, noisePower: number): number {
  if (noisePower === 0) return Infinity;
  if (signalPower === 0) return -Infinity;
  return 10 * Math.log10(signalPower / noisePower);
}
