import type { Dim } from '../onnx/graph.js';
import { defineOp, OpError } from './op-def.js';
import { broadcastShapes, input, requireRank, typeOf, unknownDim } from './shared/shapes.js';
import { single } from '../engine/lowering.js';

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
  lower(ctx) {
    const x = ctx.inputs[0]?.type.shape;
    const known = ctx.inputs[1]?.known?.values;
    if (!x || !known) throw new OpError('the target shape (input 1) must be known for training; run `slim optimize` to fold shape computations first');
    // A symbolic entry (the batch, read from a tensor) must be the input's own dim there: 1 keeps it.
    const rank = Math.max(x.length, known.length);
    const target = known.map((d: Dim, i) => {
      if (typeof d === 'number') return d;
      if (x[x.length - rank + (rank - known.length) + i] === d) return 1;
      throw new OpError(`entry ${i} of the target shape is ${d}, which is not the input's dim there; the engine expands to static shapes only`);
    });
    return single('expand', { inputs: [ctx.node.inputs[0]!], ints: target });
  },
});
