import type { Dim } from '../onnx/graph.js';
import { defineOp, OpError } from './op-def.js';
import { broadcastShapes, input, requireRank, typeOf, unknownDim } from './shared/shapes.js';
import { single, STATIC_SHAPE_FIX } from '../engine/lowering.js';
import { samePorts } from '../compress/prune/rules.js';
import type { ChannelContext } from '../compress/prune/channel-rule.js';
import { FOLD_HINT } from '../compress/prune/shape-expr.js';
import { int64 } from '../onnx/tensor.js';

/**
 * Broadcast the input to a shape, numpy style in both directions (the output may keep the input's larger
 * dims). torch exports expand / expand_as (F.normalize's divisor) as this, often with the shape read
 * from another tensor: an entry that is the batch symbol is kept from the input.
 */
export const expand = defineOp<Record<string, never>>({
  opType: 'Expand',
  domain: '',
  summary: 'broadcast the input to a shape (numpy rules, both directions)',
  inputCount: [2, 2],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    const x = input(ctx, 0);
    const shapeLength = requireRank(ctx, 1, [1])[0];
    const known = ctx.inputs[1]?.known?.values;
    if (!x.type.shape) return [typeOf(x.type.dtype)];
    if (!known) {
      if (typeof shapeLength !== 'number') return [typeOf(x.type.dtype)];
      const rank = Math.max(x.type.shape.length, shapeLength);
      return [typeOf(x.type.dtype, Array.from({ length: rank }, (_, i) => unknownDim(ctx, 0, i)))];
    }
    return [typeOf(x.type.dtype, broadcastShapes(x.type.shape, known))];
  },
  macs: () => 0,
  passesThrough: () => 0, // to the shape it has (the pass compares shapes)
  lower(ctx) {
    const x = ctx.inputs[0]?.type.shape;
    const known = ctx.inputs[1]?.known?.values;
    if (!x || !known) throw new OpError(`the target shape (input 1) must be known for training; ${STATIC_SHAPE_FIX}`);
    // A symbolic entry (the batch, read from a tensor) must be the input's own dim there: 1 keeps it.
    const rank = Math.max(x.length, known.length);
    const target = known.map((d: Dim, i) => {
      if (typeof d === 'number') return d;
      if (x[x.length - rank + (rank - known.length) + i] === d) return 1;
      throw new OpError(`entry ${i} of the target shape is ${d}, which is not the input's dim there; the engine expands to static shapes only`);
    });
    return single('expand', { inputs: [ctx.node.inputs[0]!], ints: target });
  },
  // Channel c in is channel c out (a squeeze-excitation's [N, C, 1, 1] gate spread over H×W); a stored
  // target that spells the channel count out is rewritten with it. One value spread over the channels
  // (a spatial gate, `g.expand(-1, C, -1, -1)`) writes as many channels as the target says: they follow
  // whatever they meet, the entry rewritten to the count kept.
  channels: {
    anyAxis: true,
    ports(ctx) {
      const channels = channelEntry(ctx);
      if (typeof channels === 'string') return channels;
      const outputAxes = channels.outputAxis === 1 ? {} : { outputAxes: [channels.outputAxis] };
      return channels.spread ? { inputs: [], outputs: [0], coupling: 'independent', spread: true, ...outputAxes } : samePorts([0], [0], channels.outputAxis);
    },
    resize(ctx, keep) {
      const channels = channelEntry(ctx);
      const kept = keep.outputs[0]?.length;
      if (typeof channels === 'string' || channels.entry === undefined || kept === undefined) return {};
      const target = ctx.inputs[1]!.known!.values.map((d, i) => (i === channels.entry ? kept : Number(d)));
      return { inputs: { 1: int64([target.length], target) } };
    },
  },
});

/**
 * Where the input's channels land in the output, and the target entry that holds their count when it is
 * stored (undefined when it is 1, or absent: the input's count is kept) — or why channels cannot pass.
 */
function channelEntry(ctx: ChannelContext<Record<string, never>>): { outputAxis: number; entry?: number; spread?: boolean } | string {
  const x = ctx.inputs[0]?.type.shape;
  const y = ctx.outputs[0]?.shape;
  const target = ctx.inputs[1]?.known?.values;
  if (!x || !y || !target) return 'its shapes or target shape are not known statically';
  const axis = ctx.channelAxes[0]!;
  const outputAxis = axis + y.length - x.length;
  const at = outputAxis - (y.length - target.length);
  if (x[axis] === 1 && y[outputAxis] !== 1) {
    if (at < 0 || typeof target[at] !== 'number') return 'it spreads one value over the channel axis';
    if (!ctx.inputs[1]?.constant) return `it spreads one value over the channel axis, by a target computed at run time${FOLD_HINT}`;
    return { outputAxis, entry: at, spread: true };
  }
  if (at < 0 || target[at] === 1) return { outputAxis };
  if (!ctx.inputs[1]?.constant) return `its target shape is computed at run time${FOLD_HINT}`;
  return { outputAxis, entry: at };
}
