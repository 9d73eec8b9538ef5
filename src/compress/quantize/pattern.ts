/**
 * The QDQ pattern of one op type, declared in its op module (`quant` on its OpDef). An op handler only
 * *marks* the node's inputs and outputs (STYLE.md §3: mark first, insert later); `planQuantization`
 * resolves the marks of the whole graph and `insertQdq` does the graph surgery, once.
 *
 * The patterns follow what ONNX Runtime fuses into integer kernels (QDQ selectors in ORT 1.30):
 * Conv → QLinearConv, Gemm → QGemm, MatMul → QLinearMatMul, Add/Mul → QLinearAdd/QLinearMul,
 * Concat → QLinearConcat, GlobalAveragePool/AveragePool → QLinear*Pool, and the ops it runs on int8
 * data directly when input and output share one scale (MaxPool, Reshape, Flatten, Transpose, ...).
 */
import type { ValueType } from '../../onnx/graph.js';
import type { OpContext } from '../../ops/op-def.js';

/** How one input or output of a node is quantized. */
export type TensorMark =
  /** A calibrated tensor: uint8 asymmetric by default (int8 symmetric as an option). */
  | { role: 'activation' }
  /** A constant weight: int8 symmetric, per channel along `axis` (per tensor when the user asks). */
  | { role: 'weight'; axis: number }
  /** A constant bias: int32, zero point 0, scale = scale(input `input`) × scale(input `weight`) per channel. */
  | { role: 'bias'; input: number; weight: number }
  /** An output that keeps the scale and zero point of input `input` (int8 pass-through ops). */
  | { role: 'same'; input: number };

/** The marks of one node; `undefined` slots stay float. */
export interface QuantUnit {
  inputs: (TensorMark | undefined)[];
  outputs: (TensorMark | undefined)[];
}

export interface QuantContext<A> extends OpContext<A> {
  /** Inferred output types. */
  outputs: ValueType[];
}

export interface QuantPattern<A> {
  /** The node's marks, or undefined when this node cannot run quantized (it then stays float). */
  mark(ctx: QuantContext<A>): QuantUnit | undefined;
  /**
   * For activation functions (Relu, Clip with min ≤ 0 ≤ max): the node can be removed when its
   * input is the quantized output of another node, because the clamp of the quantized range (zero
   * point at qmin, range calibrated after the activation) does exactly what the function does.
   */
  foldsIntoRange?(ctx: QuantContext<A>): boolean;
}

const activation: TensorMark = { role: 'activation' };

/** Float32 tensors only: other element types are never quantized. */
export function isFloat32(ctx: QuantContext<unknown>, slot: number): boolean {
  return ctx.inputs[slot]?.type.dtype === 'float32';
}

/** True when input `slot` is a float32 constant (an initializer): a weight or a bias. */
export function isConstantFloat(ctx: QuantContext<unknown>, slot: number): boolean {
  const facts = ctx.inputs[slot];
  return facts?.type.dtype === 'float32' && facts.constant !== undefined;
}

/** Ops that compute on int8 data as is when input 0 and output 0 share one scale: MaxPool, Reshape, ... */
export function passThrough<A>(): QuantPattern<A> {
  return {
    mark: (ctx) => (isFloat32(ctx, 0) ? { inputs: [], outputs: [{ role: 'same', input: 0 }] } : undefined),
  };
}

/**
 * Ops with an integer kernel over quantized inputs and output (QLinearAdd, QLinearConcat,
 * QLinearGlobalAveragePool, ...): the first `inputs` inputs and the output are activations.
 */
export function quantizedInputsAndOutput<A>(inputs = 1): QuantPattern<A> {
  return {
    mark(ctx) {
      const count = inputs === Infinity ? ctx.inputs.length : inputs;
      for (let i = 0; i < count; i++) if (!isFloat32(ctx, i)) return undefined;
      return { inputs: Array.from({ length: count }, () => activation), outputs: [activation] };
    },
  };
}

/** Relu-like functions that a quantized producer absorbs; alone they stay float (no integer kernel). */
export function foldableActivation<A>(folds: (ctx: QuantContext<A>) => boolean = () => true): QuantPattern<A> {
  return { mark: () => undefined, foldsIntoRange: folds };
}

export const ACTIVATION: TensorMark = activation;
