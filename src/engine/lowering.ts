import type { Node, ValueType } from '../onnx/graph.js';
import type { Tensor } from '../onnx/tensor.js';
import { OpError, type OpContext } from '../ops/op-def.js';
import { knownInts } from '../ops/shared/shapes.js';
import type { BinaryAttrs } from '../ops/shared/elementwise.js';
import { learnedOperand } from '../ops/shared/learned.js';
import type { Window } from '../ops/shared/window.js';

/**
 * How an op runs in the training engine. Each op module's `lower` returns a Lowering: one or more
 * kernel calls of the native plan interpreter (native/src/kernels.cc, which documents each kernel's
 * ints/floats layout), and which of its inputs are weights or training state. The plan compiler
 * (compile.ts) turns lowerings into the flat instruction arrays the addon runs.
 */

/** The native kernels; a test checks this list against the addon's kernelNames(). */
export const KERNELS = [
  'conv', 'batch_norm', 'relu', 'sigmoid', 'hard_swish', 'hard_sigmoid', 'leaky_relu', 'clip',
  'identity', 'add', 'sub', 'mul', 'div', 'max_pool', 'avg_pool', 'global_avg_pool', 'global_max_pool',
  'flatten', 'reshape', 'transpose', 'squeeze', 'unsqueeze', 'gemm', 'matmul', 'concat', 'split', 'softmax',
  'dropout', 'fake_quant', 'dequantize', 'pad', 'fake_quant_lsq',
  'sync_batch_norm', 'reduce', 'slice', 'layer_norm', 'instance_norm', 'erf', 'variadic', 'expand',
  'tanh', 'softplus', 'exp', 'log', 'sqrt', 'reciprocal', 'neg', 'abs', 'softsign', 'elu', 'selu', 'celu', 'prelu', 'pow', 'resample',
] as const;

export type KernelName = (typeof KERNELS)[number];

export interface LoweredStep {
  kernel: KernelName;
  /** Values read, in the kernel's order; '' for an omitted optional input. Default: the node's inputs. */
  inputs?: string[];
  /** Values written. Default: the node's outputs. */
  outputs?: string[];
  ints?: number[];
  floats?: number[];
}

export interface Lowering {
  steps: LoweredStep[];
  /** Inputs that are trained when they are float initializers (weights, biases, BN scale and shift). */
  params?: string[];
  /** Params that scale or shift (biases, per-channel affines): no weight decay by default, whatever their rank. */
  vectors?: string[];
  /** Inputs the kernel updates in place while training (BN running statistics); saved with the weights. */
  state?: string[];
}

/** What a lowering sees: the op context of shape inference plus its neighbours in the graph. */
export interface LowerContext<A> extends OpContext<A> {
  outputs: ValueType[];
  /** The node producing `value`; undefined for graph inputs and initializers. */
  producer(value: string): Node | undefined;
  /** The initializer named `value` (Constant nodes are initializers by then); undefined for computed values. */
  initializer(value: string): Tensor | undefined;
  consumers(value: string): readonly Node[];
  /** A QuantizeLinear's integer range when narrower than its type's (CompileOptions.quantRanges). */
  quantRange?: readonly [number, number];
}

/** A lowering of one kernel over the node's own inputs and outputs. */
export function single(kernel: KernelName, extra: Omit<LoweredStep, 'kernel'> = {}, roles: Omit<Lowering, 'steps'> = {}): Lowering {
  return { steps: [{ kernel, ...extra }], ...roles };
}

/** Conv/pool window → the kernels' [nsp, ...] layout (strides, padsBegin, padsEnd, dilations). */
export function windowInts(window: Window, options: { kernel: boolean; dilations: boolean }): number[] {
  const nsp = window.strides.length;
  return [
    nsp,
    ...(options.kernel ? window.kernel : []),
    ...window.strides,
    ...window.padsBegin,
    ...window.padsEnd,
    ...(options.dilations ? window.dilations : []),
  ];
}

/**
 * Explicit pads for auto_pad SAME_UPPER / SAME_LOWER given static spatial input dims (the engine only
 * takes explicit pads). VALID and NOTSET windows come back unchanged.
 */
export function explicitPads<A>(ctx: LowerContext<A>, window: Window): Window {
  if (!window.autoPad.startsWith('SAME')) return window.autoPad === 'VALID' ? { ...window, padsBegin: window.padsBegin.map(() => 0), padsEnd: window.padsEnd.map(() => 0) } : window;
  const shape = ctx.inputs[0]?.type.shape;
  const spatial = shape?.slice(2);
  if (!spatial || spatial.some((d) => typeof d !== 'number')) {
    throw new OpError(`auto_pad ${window.autoPad} needs static spatial input dims for training`);
  }
  const begin: number[] = [];
  const end: number[] = [];
  spatial.forEach((dim, i) => {
    const n = dim as number;
    const stride = window.strides[i]!;
    const span = window.dilations[i]! * (window.kernel[i]! - 1) + 1;
    const total = Math.max(0, (Math.ceil(n / stride) - 1) * stride + span - n);
    const small = Math.floor(total / 2);
    begin.push(window.autoPad === 'SAME_UPPER' ? small : total - small);
    end.push(window.autoPad === 'SAME_UPPER' ? total - small : small);
  });
  return { ...window, padsBegin: begin, padsEnd: end };
}

/**
 * What to do about a shape computed at run time that training needs static. slimkit folds those that
 * follow the batch alone (engine/compile.ts); the rest read a free height or width, or use the batch in
 * a way it does not fold. A model exported without dynamic_axes has them all as constants, and slimkit
 * frees a fixed batch itself (passes/any-batch.ts).
 */
export const STATIC_SHAPE_FIX = 'slimkit folds only shape computations that follow the batch alone: export the model without dynamic_axes (slimkit frees a fixed batch itself), or at least with a fixed height and width';

/** The static integer contents of a constant input (shape, axes, split sizes), or an OpError. */
export function constantInts<A>(ctx: LowerContext<A>, index: number, what: string): number[] {
  const values = knownInts(ctx, index);
  if (!values) {
    throw new OpError(`${what} (input ${index}) must be a constant for training; ${STATIC_SHAPE_FIX}`);
  }
  return values;
}

/** The single number held by a constant scalar input (scales, zero points, clip bounds). */
export function constantScalar<A>(ctx: LowerContext<A>, index: number, what: string): number | undefined {
  const facts = ctx.inputs[index];
  if (!facts) return undefined;
  const t: Tensor | undefined = facts.constant;
  if (!t) throw new OpError(`${what} ('${facts.name}') must be a constant for training`);
  if (t.data.length !== 1) throw new OpError(`${what} ('${facts.name}') must hold one value, it holds ${t.data.length}`);
  const v = t.data[0];
  return typeof v === 'bigint' ? Number(v) : Number(v);
}

/**
 * Add / Sub / Mul / Div, and which constant operand trains (learnedOperand: a layer's bias, a
 * per-channel scale or shift after the first layer) — as scales and shifts, without weight decay.
 */
export function binaryLowering(kernel: 'add' | 'sub' | 'mul' | 'div', ctx: LowerContext<BinaryAttrs>): Lowering {
  if (ctx.attrs.legacy?.axis !== undefined) throw new OpError('opset < 7 broadcasting along an axis is not supported for training');
  const params: string[] = [];
  const lookup = { producer: ctx.producer, stored: ctx.initializer };
  ctx.node.inputs.forEach((name, i) => {
    if (name && ctx.initializer(name)?.dtype === 'float32' && learnedOperand(ctx.node, i, lookup)) params.push(name);
  });
  return single(kernel, {}, { params, vectors: params });
}
