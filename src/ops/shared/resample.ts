/**
 * Resize along one axis as a weighted gather: output position x reads input positions index[x·taps + t]
 * with weights weights[x·taps + t] (nearest: 1 tap; linear: 2; cubic: 4). The coordinate mapping and
 * rounding are ONNX's, computed in float32 as ONNX Runtime computes them, so the training engine's
 * `resample` kernel reproduces the model's Resize exactly; ATen's gather and multiply are differentiable.
 */
import type { CoordinateMode, NearestMode, ResizeMode } from '../resize.js';

export interface ResampleAxis {
  axis: number;
  out: number;
  taps: number;
  index: number[];
  weights: number[];
}

export interface ResampleSpec {
  mode: ResizeMode;
  coordinateMode: CoordinateMode;
  nearestMode: NearestMode;
  cubicCoeffA: number;
  excludeOutside: boolean;
  /** Input and output lengths of the axis. */
  length: number;
  out: number;
  /** The scale coordinates are mapped with (the given scale, or out / length). */
  scale: number;
}

const f32 = Math.fround;

/** Where output position x reads in the input (ONNX's coordinate_transformation_mode), in float32. */
export function sourceCoordinate(x: number, spec: Pick<ResampleSpec, 'coordinateMode' | 'length' | 'out' | 'scale'>): number {
  const { length, out } = spec;
  const scale = f32(spec.scale);
  switch (spec.coordinateMode) {
    case 'asymmetric':
      return f32(x / scale);
    case 'align_corners':
      return out === 1 ? 0 : f32(f32(x * (length - 1)) / (out - 1));
    case 'pytorch_half_pixel':
      return out > 1 ? f32(f32(f32(x + 0.5) / scale) - 0.5) : 0;
    case 'half_pixel_symmetric': {
      const adjustment = f32(out / f32(scale * length));
      const offset = f32(f32(length / 2) * f32(1 - adjustment));
      return f32(offset + f32(f32(f32(x + 0.5) / scale) - 0.5));
    }
    case 'half_pixel':
      return f32(f32(f32(x + 0.5) / scale) - 0.5);
    case 'tf_half_pixel_for_nn':
      return f32(f32(x + 0.5) / scale);
    default:
      throw new Error(`no source coordinate for ${spec.coordinateMode}`);
  }
}

function nearestIndex(v: number, mode: NearestMode, downscale: boolean): number {
  const tie = v - Math.floor(v) === 0.5;
  switch (mode) {
    case 'round_prefer_floor':
      return tie ? Math.floor(v) : Math.round(v);
    case 'round_prefer_ceil':
      return tie ? Math.ceil(v) : Math.round(v);
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    case 'simple':
      return downscale ? Math.ceil(v) : Math.floor(v);
  }
}

/** Keys' cubic convolution weights of the four neighbours floor(v)−1 … floor(v)+2 at fraction t. */
function cubicWeights(t: number, a: number): number[] {
  const near = (d: number): number => ((a + 2) * d - (a + 3)) * d * d + 1;
  const far = (d: number): number => ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** The gather of one axis, or undefined when it reads every element where it is (nothing to do). */
export function resampleTaps(spec: ResampleSpec): Omit<ResampleAxis, 'axis'> | undefined {
  const { length, out, mode } = spec;
  const clamp = (i: number): number => Math.min(Math.max(i, 0), length - 1);
  const taps = mode === 'nearest' ? 1 : mode === 'linear' ? 2 : 4;
  const index: number[] = [];
  const weights: number[] = [];
  for (let x = 0; x < out; x++) {
    const v = sourceCoordinate(x, spec);
    if (mode === 'nearest') {
      index.push(clamp(nearestIndex(v, spec.nearestMode, spec.scale < 1)));
      weights.push(1);
    } else if (mode === 'linear') {
      // Outside the input, the edge value (ONNX Runtime clamps the coordinate).
      const c = Math.min(Math.max(v, 0), length - 1);
      const i0 = Math.floor(c);
      const t = f32(c - i0);
      index.push(i0, clamp(i0 + 1));
      weights.push(f32(1 - t), t);
    } else {
      const i0 = Math.floor(v);
      const w = cubicWeights(f32(v - i0), spec.cubicCoeffA);
      const at = [i0 - 1, i0, i0 + 1, i0 + 2];
      if (spec.excludeOutside) {
        // Neighbours outside the input weigh nothing; the others are renormalized to sum to 1.
        const inside = at.map((i, k) => (i >= 0 && i < length ? w[k]! : 0));
        const sum = inside.reduce((p, q) => p + q, 0);
        weights.push(...inside.map((q) => q / sum));
      } else {
        weights.push(...w);
      }
      index.push(...at.map(clamp));
    }
  }
  const identity = out === length && Array.from({ length: out }, (_, x) => x).every((x) => {
    for (let t = 0; t < taps; t++) {
      const w = weights[x * taps + t]!;
      if (w !== 0 && (index[x * taps + t] !== x || w !== 1)) return false;
    }
    return true;
  });
  return identity ? undefined : { out, taps, index, weights };
}
