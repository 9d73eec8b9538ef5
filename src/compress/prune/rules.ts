/**
 * Building blocks for the channel rules in op modules (see channel-rule.ts): the common shapes of
 * channel flow, so that an op's entry is one line when it is ordinary and a few when it is not.
 */
import type { Dim, Node } from '../../onnx/graph.js';
import type { ReduceAttrs } from '../../ops/shared/reduce.js';
import { knownInts, normalizeAxes } from '../../ops/shared/shapes.js';
import type { ChannelContext, ChannelLink, ChannelParam, ChannelPorts, ChannelRule, NodeEdit, ParamRole, SlotRef } from './channel-rule.js';
import { float32, makeTensor, numberToFloat16Bits, toNumbers, type Tensor } from '../../onnx/tensor.js';

/** The channel axis (1 unless channels were moved) of a shape; undefined when the rank has no such axis. */
export function channelDim(shape: readonly Dim[] | undefined, axis = 1): Dim | undefined {
  return shape && axis < shape.length ? shape[axis] : undefined;
}

/**
 * Ties that keep `parts` equal parts of a port's channels equal: channel j of the first part goes with
 * channel j of every other (a grouped conv's groups, torch's chunk).
 */
export function equalPartTies(side: 'in' | 'out', parts: number, partSize: number): ChannelLink[] {
  return Array.from({ length: parts - 1 }, (_, p) => ({ from: { side, slot: 0 }, to: { side, slot: 0 }, fromStart: 0, toStart: (p + 1) * partSize, count: partSize, span: 1 }));
}

/** The ports of an op that maps channel i of `inputs` to channel i of `outputs`, on `axis` of every output. */
export function samePorts(inputs: number[], outputs: number[], axis = 1): ChannelPorts {
  if (axis === 1) return { inputs, outputs, coupling: 'same' };
  const outputAxes: number[] = [];
  for (const slot of outputs) outputAxes[slot] = axis; // indexed by slot: a skipped optional output leaves a hole
  return { inputs, outputs, coupling: 'same', outputAxes };
}

/**
 * Channel i in is channel i out: unary elementwise ops, casts — on whatever axis the input carries
 * them. Every output slot the node has is a port, so an extra output (a mask) is pruned along with the first.
 */
export function sameChannels<A>(): ChannelRule<A> {
  return {
    anyAxis: true,
    ports: (ctx) => samePorts([0], ctx.node.outputs.map((_, i) => i).filter((i) => ctx.node.outputs[i]), ctx.channelAxes[0]),
  };
}

/** The op reads only its input's shape (Shape): no channel depends on it; downstream values are computed at run time. */
export function shapeOnlyChannels<A>(): ChannelRule<A> {
  return { ports: () => ({ inputs: [], outputs: [], coupling: 'independent' }) };
}

/**
 * Numpy-broadcasting binary ops (Add, Sub, Mul, Div). The output carries channels on the axis its
 * full-rank dynamic inputs do (1, or last after a Transpose). A dynamic input whose channel axis lines
 * up with the output's is a port; a constant one is a param sliced along its aligned axis (a per-channel
 * bias or scale of shape [C,1,1], [1,C,1,1] or, channels-last, [C]); one that broadcasts (size 1, or no
 * such axis) is neither. A dynamic input whose channels sit elsewhere is a boundary.
 */
export function broadcastChannels<A>(role: ParamRole | ((ctx: ChannelContext<A>) => ParamRole)): ChannelRule<A> {
  return {
    anyAxis: true,
    ports(ctx) {
      if (ctx.opset < 7) return 'uses opset < 7 broadcasting (broadcast/axis attributes)';
      const b = broadcastRoles(ctx);
      if (typeof b === 'string') return b;
      const blocked = b.roles.find((r) => r.kind === 'misaligned');
      if (blocked) return `input '${ctx.node.inputs[blocked.slot]}' carries channels on axis ${ctx.channelAxes[blocked.slot]}, not on the output's channel axis`;
      return samePorts(b.roles.filter((r) => r.kind === 'port').map((r) => r.slot), [0], b.outAxis);
    },
    params(ctx) {
      const b = broadcastRoles(ctx);
      if (typeof b === 'string') return [];
      const as = typeof role === 'function' ? role(ctx) : role;
      return b.roles.filter((r) => r.kind === 'param').map((r) => ({ slot: r.slot, port: { side: 'out', slot: 0 }, axis: r.axis, role: as }));
    },
  };
}

interface BroadcastRole {
  slot: number;
  kind: 'port' | 'param' | 'misaligned' | 'broadcast';
  axis: number;
}

/**
 * The output's channel axis: that of the dynamic inputs of the output's rank (1 when none is), or why
 * they disagree. An input that carries none (its axis past its last: a gate made from a mean over the
 * channels) has no say.
 */
function outputChannelAxis<A>(ctx: ChannelContext<A>): number | string {
  const rank = ctx.outputs[0]?.shape?.length;
  const axes = new Set<number>();
  ctx.inputs.forEach((facts, slot) => {
    if (facts && !facts.constant && facts.type.shape?.length === rank && !(rank !== undefined && ctx.channelAxes[slot]! >= rank)) axes.add(ctx.channelAxes[slot]!);
  });
  if (axes.size > 1) return `its inputs carry channels on different axes (${[...axes].join(', ')})`;
  return axes.size === 1 ? [...axes][0]! : 1;
}

/** The output's channel axis and what each input is to it, or why the inputs' channel axes disagree. */
function broadcastRoles<A>(ctx: ChannelContext<A>): { outAxis: number; roles: BroadcastRole[] } | string {
  const out = ctx.outputs[0]?.shape;
  const outAxis = outputChannelAxis(ctx);
  if (typeof outAxis === 'string') return outAxis;
  const channels = channelDim(out, outAxis);
  const roles = ctx.inputs.map((facts, slot): BroadcastRole => {
    const shape = facts?.type.shape;
    if (!facts || !shape || !out || channels === undefined) return { slot, kind: 'broadcast', axis: -1 };
    const axis = outAxis - (out.length - shape.length);
    if (axis < 0) return { slot, kind: 'broadcast', axis };
    if (shape[axis] === 1 && channels !== 1) return { slot, kind: 'broadcast', axis };
    if (facts.constant) return { slot, kind: 'param', axis };
    return { slot, kind: ctx.channelAxes[slot] === axis ? 'port' : 'misaligned', axis };
  });
  return { outAxis, roles };
}

/** Pools: channel i in is channel i out; MaxPool's optional Indices output encodes the channel count. */
export function poolChannels<A>(): ChannelRule<A> {
  return {
    ports(ctx) {
      if (ctx.node.outputs[1]) return 'outputs Indices, whose values depend on the channel count';
      return samePorts([0], [0]);
    },
  };
}

/**
 * Links for ops that join or cut along axis 1: each part's channels sit at a running offset in the
 * whole. `whole` is the joined (Concat output) or cut (Split input) side; `parts` the other.
 */
export function offsetLinks(whole: SlotRef, parts: { ref: SlotRef; count: number }[]): ChannelLink[] {
  let offset = 0;
  return parts.map(({ ref, count }) => {
    const link: ChannelLink =
      whole.side === 'out'
        ? { from: ref, to: whole, fromStart: 0, toStart: offset, count, span: 1 }
        : { from: whole, to: ref, fromStart: offset, toStart: 0, count, span: 1 };
    offset += count;
    return link;
  });
}

/** The param list of a node whose stored per-channel vectors all follow output 0 (BatchNormalization). */
export function vectorParams(slots: { slot: number; role: ParamRole }[]): ChannelParam[] {
  return slots.map(({ slot, role }) => ({ slot, port: { side: 'out', slot: 0 }, axis: 0, role }));
}

/** The static channel counts of `slots` of one side, or undefined when one is not known. */
export function staticChannels<A>(ctx: ChannelContext<A>, side: 'in' | 'out', slots: number[]): number[] | undefined {
  const counts = slots.map((s) => channelDim(side === 'in' ? ctx.inputs[s]?.type.shape : ctx.outputs[s]?.shape));
  return counts.every((c): c is number => typeof c === 'number') ? counts : undefined;
}

/** Flatten at axis 1: channel c of input 0 is features c·S … c·S + S − 1 of output 0. Undefined when C or S is symbolic. */
export function flattenLinks(x: readonly Dim[]): ChannelPorts | undefined {
  const count = x[1];
  let span = 1;
  for (const d of x.slice(2)) {
    if (typeof d !== 'number') return undefined;
    span *= d;
  }
  if (typeof count !== 'number') return undefined;
  return { inputs: [0], outputs: [0], coupling: [{ from: { side: 'in', slot: 0 }, to: { side: 'out', slot: 0 }, fromStart: 0, toStart: 0, count, span }] };
}

/**
 * The two reshapes channels survive: a flatten [N, C, …] → [N, C·S], and one that keeps axes 0 and 1.
 * `rewrite` is set when the target spells the channel entry out as a number (it must then be stored,
 * so that pruning can write the new count). Anything else is a boundary, with the reason.
 */
export function channelReshape<A>(
  ctx: ChannelContext<A>,
  target: readonly Dim[] | undefined,
  allowZero: boolean,
): { ports: ChannelPorts; rewrite: boolean } | string {
  const x = ctx.inputs[0]?.type.shape;
  const y = ctx.outputs[0]?.shape;
  if (!x || !y || !target || x.length < 2 || y.length < 2) return 'its shapes or target are not known statically';
  const entry = target[1];
  const rewrite = typeof entry === 'number' && (entry > 0 || (entry === 0 && allowZero));
  if (x[0] === y[0] && y.length === 2 && x.length > 2) {
    const ports = flattenLinks(x);
    if (!ports) return 'its input has symbolic channel or spatial dims';
    return { ports, rewrite };
  }
  if (x[0] === y[0] && x[1] === y[1]) return { ports: samePorts([0], [0]), rewrite };
  return `reshapes [${x.join(', ')}] to [${y.join(', ')}] across the channel axis`;
}

/**
 * How a reduction over the channels stays what it was when the removed channels were zeros (what a
 * removed channel is everywhere else: a Conv that no longer reads it): 'exact' (Sum, L1, L2, SumSquare,
 * LogSum: a zero adds nothing), 'mean' (the mean over the kept channels times kept / all; but a mean a
 * normalization centres or scales its input by — a LayerNorm exported as ops — is taken over the kept
 * channels, as LayerNormalization's statistics are), 'max' (then Max with 0, unless the input is never
 * negative: CBAM's channel max after a ReLU), 'stop' (Min, Prod, LogSumExp: a boundary).
 */
export type ReduceOverChannels = 'exact' | 'mean' | 'max' | 'stop';

/**
 * Reductions (ReduceMean, …), on whatever axis the input carries its channels. Channels not reduced pass
 * through, to the axis they land on once dropped axes are gone. Reduced over, they are read and not
 * written, and `overChannels` says what keeps the result (ReduceOverChannels).
 */
export function reduceChannels(axesInputSince: number, overChannels: ReduceOverChannels): ChannelRule<ReduceAttrs> {
  // The axes reduced (none for a no-op), or why they are not known.
  const reducedAxes = (ctx: ChannelContext<ReduceAttrs>): { reduced: number[]; rank: number } | string => {
    const rank = ctx.inputs[0]?.type.shape?.length;
    const axes = ctx.opset >= axesInputSince ? (ctx.inputs[1] ? knownInts(ctx, 1) : []) : (ctx.attrs.axes ?? []);
    if (rank === undefined || !axes) return 'its axes are computed at run time';
    if (axes.length === 0 && ctx.attrs.noopWithEmptyAxes) return { reduced: [], rank };
    return { reduced: axes.length === 0 ? Array.from({ length: rank }, (_, i) => i) : normalizeAxes(axes, rank), rank };
  };
  return {
    anyAxis: true,
    ports(ctx) {
      const r = reducedAxes(ctx);
      if (typeof r === 'string') return r;
      const channelAxis = ctx.channelAxes[0]!;
      if (r.reduced.includes(channelAxis)) {
        if (overChannels === 'stop') return `reduces over the channel axis, where a removed channel would change every result`;
        if (overChannels !== 'exact' && correction(ctx, overChannels, 1) === undefined) return `reduces ${ctx.inputs[0]?.type.dtype ?? 'values'} over a channel axis of unknown size`;
        // Written: the channel axis at size 1 (keepdims), or none (an axis past the output's last).
        return { inputs: [0], outputs: [], coupling: 'independent', outputAxes: [ctx.attrs.keepDims ? channelAxis : r.rank] };
      }
      const shift = ctx.attrs.keepDims ? 0 : r.reduced.filter((a) => a < channelAxis).length;
      return samePorts([0], [0], channelAxis - shift);
    },
    resize(ctx, keep) {
      const kept = keep.inputs[0];
      const r = reducedAxes(ctx);
      if (!kept || overChannels === 'exact' || overChannels === 'stop' || typeof r === 'string' || !r.reduced.includes(ctx.channelAxes[0]!)) return {};
      const append = correction(ctx, overChannels, kept.length);
      return append ? { append } : {};
    },
    // Removed channels replaced by their means (--data): a sum gains them, a mean gains them over all
    // the channels (after its kept/all), a max takes the largest of them in place of 0.
    compensate(ctx, shift) {
      const r = reducedAxes(ctx);
      if (overChannels === 'stop' || typeof r === 'string' || !r.reduced.includes(ctx.channelAxes[0]!) || r.reduced.length !== 1) return {};
      const dtype = ctx.inputs[0]?.type.dtype ?? '';
      const removed = [...shift].filter((v) => v !== 0);
      if (removed.length === 0) return {};
      if (overChannels === 'max') {
        const largest = scalarOf(dtype, Math.max(...removed));
        return largest ? { append: { slot: 0, opType: 'Max', operand: largest } } : {};
      }
      if (overChannels === 'mean' && normalizationStatistic(ctx)) return {};
      const sum = removed.reduce((a, v) => a + v, 0);
      const added = scalarOf(dtype, overChannels === 'mean' ? sum / shift.length : sum);
      // Sums of powers or logs (L1, L2, LogSum) would need the means' powers: only plain sums and means.
      const plain = overChannels === 'mean' || ctx.node.opType === 'ReduceSum';
      return added && plain ? { append: { slot: 0, opType: 'Add', operand: added } } : {};
    },
  };
}

/** Ops whose output is never negative: a max over channels they write needs no zero for removed ones. */
const NON_NEGATIVE = new Set(['Relu', 'Sigmoid', 'HardSigmoid', 'Softplus', 'Abs', 'Exp', 'Sqrt', 'Softmax']);
/** Ops whose output is never negative when their first input is not: they move, pick or average values. */
const KEEPS_SIGN = new Set([
  'Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'MaxPool', 'AveragePool',
  'GlobalMaxPool', 'GlobalAveragePool', 'Slice', 'Gather', 'Expand', 'Tile', 'Resize', 'Upsample', 'Pad',
]);

/**
 * Whether a value is never negative, by its producers: a Relu (or Clip with a lower bound ≥ 0, ReLU6),
 * seen through ops that only move, pick or average values (CBAM's channel max after ReLU → Transpose;
 * a constant Pad only with a value ≥ 0).
 */
function neverNegative(ctx: ChannelContext<ReduceAttrs>, value: string, depth = 0): boolean {
  const producer = ctx.producer?.(value);
  if (!producer || depth > 16) return false;
  if (NON_NEGATIVE.has(producer.opType)) return true;
  if (producer.opType === 'Clip') {
    const attr = producer.attributes.min;
    const stored = producer.inputs[1] ? ctx.stored?.(producer.inputs[1]) : undefined;
    const min = attr?.type === 'float' ? attr.value : stored && stored.data.length === 1 ? toNumbers(stored)[0] : undefined;
    return (min !== undefined && min >= 0) || neverNegative(ctx, producer.inputs[0] ?? '', depth + 1);
  }
  if (producer.opType === 'Pad' && padsWithNegative(ctx, producer)) return false;
  return KEEPS_SIGN.has(producer.opType) && neverNegative(ctx, producer.inputs[0] ?? '', depth + 1);
}

/**
 * The node after a mean or max over the channels that keeps its result when `kept` of them remain
 * (ReduceOverChannels), null when none is needed, undefined when the dtype or channel count rules it out.
 */
function correction(ctx: ChannelContext<ReduceAttrs>, over: 'mean' | 'max', kept: number): NonNullable<NodeEdit['append']> | null | undefined {
  const input = ctx.inputs[0]?.type;
  const all = channelDim(input?.shape, ctx.channelAxes[0]);
  if (!input || typeof all !== 'number') return undefined;
  if (over === 'max') {
    if (neverNegative(ctx, ctx.node.inputs[0]!)) return null;
    const zero = scalarOf(input.dtype, 0);
    return zero ? { slot: 0, opType: 'Max', operand: zero } : undefined;
  }
  if (normalizationStatistic(ctx)) return null;
  const ratio = scalarOf(input.dtype, kept / all);
  return ratio ? { slot: 0, opType: 'Mul', operand: ratio } : undefined;
}

/**
 * A mean that is a normalization's statistic: every reader centres its input by it (x − mean(x), either
 * way round), or it is the mean of such a centred value squared (Pow 2, or Mul by itself) — a LayerNorm
 * torch exported as ops, whose statistics follow the kept channels. A mean some other reader also takes
 * (a gate), or of another difference (x − a pooled x), is a statistic of its own and is corrected.
 */
function normalizationStatistic(ctx: ChannelContext<ReduceAttrs>): boolean {
  const [x] = ctx.node.inputs;
  const [y] = ctx.node.outputs;
  if (!x || !y || !ctx.consumers || !ctx.producer) return false;
  const centres = (n: Node, value: string, mean: string): boolean => n.opType === 'Sub' && ((n.inputs[0] === value && n.inputs[1] === mean) || (n.inputs[0] === mean && n.inputs[1] === value));
  const readers = ctx.consumers(y);
  if (readers.length > 0 && readers.every((n) => centres(n, x, y))) return true;
  const square = ctx.producer(x);
  const squared = square && (square.opType === 'Pow' || (square.opType === 'Mul' && square.inputs[0] === square.inputs[1])) ? square.inputs[0] : undefined;
  const difference = squared ? ctx.producer(squared) : undefined;
  if (difference?.opType !== 'Sub') return false;
  return difference.inputs.some((m, i) => {
    const mean = m ? ctx.producer!(m) : undefined;
    const other = difference.inputs[1 - i];
    return m !== undefined && other !== undefined && mean?.opType === 'ReduceMean' && mean.inputs[0] === other && ctx.consumers!(m).every((n) => centres(n, other, m));
  });
}

/** Whether a Pad may write a negative constant (reflect and edge only copy values); unknown counts as may. */
function padsWithNegative(ctx: ChannelContext<ReduceAttrs>, pad: Node): boolean {
  const mode = pad.attributes.mode;
  if (mode?.type === 'string' && mode.value !== 'constant') return false;
  const valueAttr = pad.attributes.value;
  if (valueAttr?.type === 'float') return valueAttr.value < 0;
  if (!pad.inputs[2]) return false;
  const stored = ctx.stored?.(pad.inputs[2]);
  const padValue = stored ? toNumbers(stored)[0] : undefined;
  return padValue === undefined || padValue < 0;
}

/** A scalar of a float dtype (a reduction's output), or undefined for others. */
function scalarOf(dtype: string, value: number): Tensor | undefined {
  if (dtype === 'float32') return float32([], [value]);
  if (dtype === 'float64') return makeTensor('float64', [], Float64Array.of(value));
  if (dtype === 'float16') return makeTensor('float16', [], Uint16Array.of(numberToFloat16Bits(value)));
  return undefined;
}

/**
 * Fold an input shift into a bias (see ChannelRule.compensate): out[o] += scale · Σ_c shift[c] · Σ W[o, c, …]
 * for a weight laid out with output channels on `outAxis` and input channels on `inAxis`. The bias
 * (length = outputs, or absent) goes to input `slot`, cut to `keepOut`. With `groups` (a grouped Conv),
 * `inAxis` holds the position within the group: output o of group g reads input channel g·a + position.
 */
export function foldShiftIntoBias(
  options: { weight: Tensor; outAxis: number; inAxis: number; bias: Tensor | undefined; slot: number; scale?: number; groups?: number },
  shift: Float64Array,
  keepOut: readonly number[] | undefined,
): NodeEdit {
  const { weight, outAxis, inAxis, bias, slot } = options;
  const dims = weight.dims;
  const w = weight.dtype === 'float32' ? (weight.data as Float32Array) : toNumbers(weight);
  const outs = dims[outAxis]!;
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const outsPerGroup = outs / (options.groups ?? 1);
  const delta = new Float64Array(outs);
  for (let i = 0; i < w.length; i++) {
    const o = Math.floor(i / strides[outAxis]!) % outs;
    const c = Math.floor(o / outsPerGroup) * dims[inAxis]! + (Math.floor(i / strides[inAxis]!) % dims[inAxis]!);
    if (shift[c] === 0) continue;
    delta[o]! += shift[c]! * w[i]!;
  }
  // A bias of one element (a scalar Gemm C) broadcasts: spell it out per output.
  const given = bias ? toNumbers(bias) : [0];
  const base = given.length === outs ? given : new Array<number>(outs).fill(given[0] ?? 0);
  const keep = keepOut ?? Array.from({ length: outs }, (_, o) => o);
  const scale = options.scale ?? 1;
  return { inputs: { [slot]: float32([keep.length], keep.map((o) => base[o]! + scale * delta[o]!)) } };
}
