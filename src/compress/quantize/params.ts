/**
 * Scales, zero points and integer values for every tensor of a plan: activations from calibrated
 * ranges, weights and biases from their values.
 */
import type { Graph } from '../../onnx/graph.js';
import type { Tensor } from '../../onnx/tensor.js';
import {
  absMaxPerChannel,
  axisLayout,
  computeScaleZeroPoint,
  qRange,
  quantizeArray,
  roundHalfEven,
  type QRange,
  type ScaleZeroPoint,
} from './math.js';
import { rootOf, type QuantPlan } from './mark.js';
import type { QuantizeOptions, TensorRange } from './types.js';

export interface ActivationQuant {
  kind: 'activation';
  type: 'uint8' | 'int8';
  scale: number;
  zeroPoint: number;
  range: TensorRange;
  qrange: QRange;
}

export interface WeightQuant {
  kind: 'weight';
  type: 'int8' | 'uint8';
  axis: number | undefined;
  params: ScaleZeroPoint[];
  values: Int32Array;
  dims: readonly number[];
  qrange: QRange;
}

export interface BiasQuant {
  kind: 'bias';
  axis: number | undefined;
  scales: number[];
  values: Int32Array;
  dims: readonly number[];
}

export type TensorQuant = ActivationQuant | WeightQuant | BiasQuant;

export interface QuantParams {
  /** By tensor name; a pass-through output maps to its root's ActivationQuant object. */
  tensors: Map<string, TensorQuant>;
  /** Things the user should know (bias overflow handled by widening a weight scale, ...). */
  warnings: string[];
}

const INT32_MAX = 2 ** 31 - 1;

export function computeParams(
  graph: Graph,
  plan: QuantPlan,
  ranges: ReadonlyMap<string, TensorRange>,
  options: Pick<QuantizeOptions, 'activations' | 'weightType' | 'reduceRange'>,
): QuantParams {
  const tensors = new Map<string, TensorQuant>();
  const warnings: string[] = [];
  const act = options.activations;
  const actRange = qRange(act.type, { symmetric: act.symmetric });
  const activation = (range: TensorRange): ActivationQuant => {
    const p = computeScaleZeroPoint(range.min, range.max, actRange, act.symmetric);
    return { kind: 'activation', type: act.type, scale: p.scale, zeroPoint: p.zeroPoint, range, qrange: actRange };
  };

  for (const [name, t] of plan.tensors) {
    if (t.kind === 'activation') {
      const range = ranges.get(t.rangeOf);
      if (!range) {
        throw new Error(`no calibrated range for tensor '${t.rangeOf}': calibrate with the activation format you build with (or calibratePlan(..., { anyActivationFormat: true }))`);
      }
      tensors.set(name, activation(range));
    } else if (t.kind === 'constant') {
      const data = floatData(graph, name);
      let min = Infinity;
      let max = -Infinity;
      for (const v of data) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      tensors.set(name, activation({ min, max }));
    } else if (t.kind === 'weight') {
      tensors.set(name, quantizeWeight(graph.initializers.get(name)!, t.axis, options));
    }
  }
  for (const [name, t] of plan.tensors) {
    if (t.kind !== 'same') continue;
    const root = rootOf(plan.tensors, name);
    const p = root ? tensors.get(root) : undefined;
    if (p) tensors.set(name, p);
  }
  for (const [name, t] of plan.tensors) {
    if (t.kind !== 'bias') continue;
    const input = tensors.get(rootOf(plan.tensors, t.input) ?? '');
    const weight = tensors.get(t.weight);
    if (input?.kind !== 'activation' || weight?.kind !== 'weight') continue;
    tensors.set(name, quantizeBias(name, graph.initializers.get(name)!, input.scale, weight, graph.initializers.get(t.weight)!, warnings));
  }
  return { tensors, warnings };
}

function floatData(graph: Graph, name: string): Float32Array {
  const t = graph.initializers.get(name);
  if (t?.dtype !== 'float32') throw new Error(`'${name}' is not a float32 initializer`);
  return t.data as Float32Array;
}

/** Symmetric weights: scale = max|w| / qmax per channel, zero point at the middle of the type. */
export function quantizeWeight(
  w: Tensor,
  axis: number | undefined,
  options: Pick<QuantizeOptions, 'weightType' | 'reduceRange'>,
): WeightQuant {
  const data = w.data as Float32Array;
  const range = qRange(options.weightType, { symmetric: true, reduceRange: options.reduceRange });
  const params = Array.from(absMaxPerChannel(data, w.dims, axis), (m) => computeScaleZeroPoint(-m, m, range, true));
  return { kind: 'weight', type: options.weightType, axis, params, values: quantizeArray(data, w.dims, axis, params, range), dims: w.dims, qrange: range };
}

/**
 * int32 bias with scale s_x · s_w[c]: the integer kernel adds it straight to its int32 accumulators.
 * A bias too large for int32 at that scale (tiny weights, large bias) widens that channel's weight
 * scale until it fits, as ONNX Runtime's quantizer does, instead of saturating.
 */
function quantizeBias(name: string, b: Tensor, inputScale: number, weight: WeightQuant, w: Tensor, warnings: string[]): BiasQuant {
  const data = b.data as Float32Array;
  const perChannel = weight.axis !== undefined;
  const channels = perChannel ? weight.params.length : 1;
  const largest = new Float64Array(channels);
  for (let i = 0; i < data.length; i++) largest[perChannel ? i : 0] = Math.max(largest[perChannel ? i : 0]!, Math.abs(data[i]!));
  let widened = 0;
  for (let c = 0; c < channels; c++) {
    const needed = largest[c]! / (inputScale * (INT32_MAX - 1024));
    if (needed > weight.params[c]!.scale) {
      requantizeChannel(weight, w, c, needed);
      widened++;
    }
  }
  if (widened > 0) warnings.push(`bias '${name}': ${widened} channel(s) did not fit int32 at scale s_x·s_w; their weight scales were widened`);
  const scales = Array.from({ length: channels }, (_, c) => Math.fround(inputScale * weight.params[c]!.scale));
  const values = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) values[i] = roundHalfEven(data[i]! / scales[perChannel ? i : 0]!);
  return { kind: 'bias', axis: perChannel ? 0 : undefined, scales, values, dims: b.dims };
}

function requantizeChannel(weight: WeightQuant, w: Tensor, c: number, scale: number): void {
  const p = { scale: Math.fround(Math.max(scale, weight.params[c]!.scale)), zeroPoint: weight.params[c]!.zeroPoint };
  weight.params[c] = p;
  const data = w.data as Float32Array;
  if (weight.axis === undefined) {
    weight.values.set(quantizeArray(data, w.dims, undefined, [p], weight.qrange));
    return;
  }
  const { channels, inner, outer } = axisLayout(w.dims, weight.axis);
  for (let o = 0; o < outer; o++) {
    const base = (o * channels + c) * inner;
    for (let i = 0; i < inner; i++) {
      const q = roundHalfEven(data[base + i]! / p.scale) + p.zeroPoint;
      weight.values[base + i] = Math.min(weight.qrange.qmax, Math.max(weight.qrange.qmin, q));
    }
  }
}
