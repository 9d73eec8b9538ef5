import { intAttr } from './attrs.js';
import { defineOp } from './op-def.js';
import { input, typeOf, unknownDim } from './shared/shapes.js';
import { shapeOnlyChannels } from '../compress/prune/rules.js';

export interface ShapeAttrs {
  /** Opset 15+: a slice [start, end) of the dims (negative counts from the end, clamped). */
  start: number;
  end?: number;
}

export const shape = defineOp<ShapeAttrs>({
  opType: 'Shape',
  domain: '',
  summary: 'the dims of a tensor as a 1-D int64 tensor (start/end slice from opset 15)',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    if (opset < 15) return { start: 0 };
    const end = node.attributes['end'] ? intAttr(node, 'end', 0) : undefined;
    return end === undefined ? { start: intAttr(node, 'start', 0) } : { start: intAttr(node, 'start', 0), end };
  },
  inferTypes(ctx) {
    const dims = input(ctx, 0).type.shape;
    if (!dims) return [typeOf('int64', [unknownDim(ctx, 0, 0)])];
    const [start, end] = sliceRange(ctx.attrs, dims.length);
    return [typeOf('int64', [end - start])];
  },
  macs: () => 0,
  // Symbolic dims stay symbols: this is how the batch size reaches Reshape in torch exports.
  foldValues(ctx) {
    const dims = input(ctx, 0).type.shape;
    if (!dims) return [undefined];
    const [start, end] = sliceRange(ctx.attrs, dims.length);
    return [{ dims: [end - start], values: dims.slice(start, end) }];
  },
  channels: shapeOnlyChannels(),
});

function sliceRange(attrs: ShapeAttrs, rank: number): [number, number] {
  const clamp = (v: number): number => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
  const start = clamp(attrs.start);
  const end = clamp(attrs.end ?? rank);
  return [start, Math.max(start, end)];
}
