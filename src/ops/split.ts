import type { Dim } from '../onnx/graph.js';
import { intAttr, intsAttr, normalizeAxis } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { takeKnown } from './shared/known.js';
import { input, knownInts, shapeOf, typeOf, unknownDim } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { isFloat32 } from '../compress/quantize/pattern.js';
import { channelDim, offsetLinks, samePorts, staticChannels } from '../compress/prune/rules.js';
import type { NodeEdit } from '../compress/prune/channel-rule.js';
import { int64 } from '../onnx/tensor.js';
import { attributesToInputs, intsInput } from './shared/upgrade.js';

export interface SplitAttrs {
  axis: number;
  /** The `split` attribute of opsets < 13; from 13 the sizes are optional input 1. */
  split?: number[];
  /** Opset 18+: equal chunks, the last one smaller when the axis does not divide. */
  numOutputs?: number;
}

export const split = defineOp<SplitAttrs>({
  opType: 'Split',
  domain: '',
  summary: 'cut a tensor into parts along one axis (sizes given, or equal chunks)',
  inputCount: [1, 2],
  outputCount: [1, Infinity],
  parseAttrs(node, opset) {
    const attrs: SplitAttrs = { axis: intAttr(node, 'axis', 0) };
    const sizes = opset < 13 ? intsAttr(node, 'split') : undefined;
    if (sizes) attrs.split = sizes;
    if (opset >= 18 && node.attributes['num_outputs']) {
      const n = intAttr(node, 'num_outputs', 0);
      if (n < 1) throw new OpError(`num_outputs must be positive, got ${n}`);
      attrs.numOutputs = n;
    }
    return attrs;
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    const count = ctx.node.outputs.length;
    if (!x.type.shape) return new Array(count).fill(typeOf(x.type.dtype));
    const shape = shapeOf(ctx, 0);
    const axis = normalizeAxis(ctx.attrs.axis, shape.length);
    const sizes = splitSizes(ctx.attrs, { dim: shape[axis]!, count, opset: ctx.opset, sizesInput: ctx.inputs[1] ? knownInts(ctx, 1) ?? null : undefined });
    return sizes.map((size, i) => {
      const out = [...shape];
      out[axis] = size ?? unknownDim(ctx, i, axis);
      return typeOf(x.type.dtype, out);
    });
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const known = ctx.inputs[0]?.known;
    if (!known) return [];
    const axis = normalizeAxis(ctx.attrs.axis, known.dims.length);
    let start = 0;
    return outputs.map((t) => {
      const size = t.shape?.[axis];
      if (typeof size !== 'number') return undefined;
      const indices = Array.from({ length: size }, (_, k) => start + k);
      start += size;
      return takeKnown(known, axis, indices);
    });
  },
  lower(ctx) {
    const axis = normalizeAxis(ctx.attrs.axis, shapeOf(ctx, 0).length);
    const sizes = ctx.outputs.map((t, i) => {
      const size = t.shape?.[axis];
      if (typeof size !== 'number') throw new OpError(`the size of output ${i} along axis ${axis} must be static for training`);
      return size;
    });
    return single('split', { inputs: [ctx.node.inputs[0]!], ints: [axis, ...sizes] });
  },
  // Every part keeps the input's scale, so ORT splits the int8 data directly.
  quant: {
    mark: (ctx) => (isFloat32(ctx, 0) ? { inputs: [], outputs: ctx.node.outputs.map(() => ({ role: 'same', input: 0 })) } : undefined),
  },
  // Pruning: along axis 1 each output takes a run of the input's channels; the sizes are rewritten.
  channels: {
    ports(ctx) {
      const rank = ctx.inputs[0]?.type.shape?.length;
      if (rank === undefined) return 'its input rank is unknown';
      const outs = ctx.node.outputs.map((_, i) => i);
      if (rank < 2 || normalizeAxis(ctx.attrs.axis, rank) !== 1) return samePorts([0], outs);
      const counts = staticChannels(ctx, 'out', outs);
      if (!counts) return 'an output has a symbolic channel count';
      if (ctx.inputs[1] && !ctx.inputs[1].constant) return 'its split sizes are computed at run time';
      return { inputs: [0], outputs: outs, coupling: offsetLinks({ side: 'in', slot: 0 }, counts.map((count, slot) => ({ ref: { side: 'out', slot }, count }))) };
    },
    resize(ctx, keep): NodeEdit {
      const rank = ctx.inputs[0]?.type.shape?.length ?? 0;
      if (rank < 2 || normalizeAxis(ctx.attrs.axis, rank) !== 1) return {};
      const sizes = ctx.outputs.map((t, i) => keep.outputs[i]?.length ?? Number(channelDim(t.shape)));
      if (ctx.opset < 13) return { attributes: { split: { type: 'ints', value: sizes } } };
      const inputs = { 1: int64([sizes.length], sizes) };
      // Explicit sizes replace num_outputs (opset 18), which ONNX forbids beside them.
      return ctx.attrs.numOutputs === undefined ? { inputs } : { inputs, attributes: { num_outputs: null } };
    },
  },
  upgrade: (ctx) => (ctx.opset >= 13 ? [ctx.node] : [attributesToInputs(ctx.node, ['split'], [intsInput(ctx, 'split', ctx.attrs.split)])]),
});

/**
 * Part sizes along the axis; undefined entries are unknown. `sizesInput` is the known `split` input,
 * null when that input is present but not static.
 */
function splitSizes(
  attrs: SplitAttrs,
  options: { dim: Dim; count: number; opset: number; sizesInput: number[] | null | undefined },
): (number | undefined)[] {
  const { dim, count, opset, sizesInput } = options;
  if (sizesInput === null) return new Array<undefined>(count).fill(undefined);
  const sizes = sizesInput ?? attrs.split;
  if (sizes) {
    if (sizes.length !== count) throw new OpError(`split has ${sizes.length} sizes [${sizes.join(', ')}] for ${count} outputs`);
    if (sizes.some((s) => s < 0)) throw new OpError(`split sizes must not be negative: [${sizes.join(', ')}]`);
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (typeof dim === 'number' && sum !== dim) throw new OpError(`split sizes [${sizes.join(', ')}] sum to ${sum}, but the axis has ${dim}`);
    return sizes;
  }
  if (attrs.numOutputs !== undefined && attrs.numOutputs !== count) {
    throw new OpError(`num_outputs is ${attrs.numOutputs}, but the node has ${count} outputs`);
  }
  if (typeof dim !== 'number') return new Array<undefined>(count).fill(undefined);
  if (opset >= 18) {
    const chunk = Math.ceil(dim / count);
    if (chunk * (count - 1) >= dim) {
      throw new OpError(`num_outputs ${count} cannot split an axis of ${dim}: chunks of ${chunk} leave the last output empty`);
    }
    return Array.from({ length: count }, (_, i) => Math.min(chunk, dim - chunk * i));
  }
  if (dim % count !== 0) throw new OpError(`an axis of ${dim} does not split into ${count} equal parts`);
  return new Array<number>(count).fill(dim / count);
}
