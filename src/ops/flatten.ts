import { intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, productDim, shapeOf, symbolicProduct, typeOf, unknownDim } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { flattenLinks } from '../compress/prune/rules.js';

export interface FlattenAttrs {
  /** As written; in [-rank, rank] (negative from opset 11). */
  axis: number;
}

/** [d0, ..., dn] → [d0 × ... × d(axis-1), d(axis) × ... × dn]. */
export const flatten = defineOp<FlattenAttrs>({
  opType: 'Flatten',
  domain: '',
  summary: 'collapse to 2-D at an axis: [N, C, H, W] → [N, C*H*W] for axis 1',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs: (node) => ({ axis: intAttr(node, 'axis', 1) }),
  inferTypes(ctx) {
    const x = input(ctx, 0);
    if (!x.type.shape) return [typeOf(x.type.dtype, [unknownDim(ctx, 0, 0), unknownDim(ctx, 0, 1)])];
    const shape = shapeOf(ctx, 0);
    const rank = shape.length;
    const axis = ctx.attrs.axis < 0 ? ctx.attrs.axis + rank : ctx.attrs.axis;
    if (axis < 0 || axis > rank) throw new OpError(`axis ${ctx.attrs.axis} is out of range for rank ${rank} (allowed ${-rank}..${rank})`);
    return [
      typeOf(x.type.dtype, [
        productDim(symbolicProduct(shape.slice(0, axis)), unknownDim(ctx, 0, 0)),
        productDim(symbolicProduct(shape.slice(axis)), unknownDim(ctx, 0, 1)),
      ]),
    ];
  },
  macs: () => 0,
  passesThrough: () => 0, // where the input is 2-D already at that axis (the pass compares shapes)
  foldValues(ctx, outputs) {
    const known = ctx.inputs[0]?.known;
    const shape = outputs[0]?.shape;
    if (!known || !shape || shape.some((d) => typeof d !== 'number')) return [undefined];
    return [{ dims: shape as number[], values: known.values }];
  },
  lower: (ctx) => single('flatten', { ints: [ctx.attrs.axis] }),
  quant: passThrough(),
  // Pruning: at axis 1, channel c becomes features c·S … c·S + S − 1 (S = the spatial size).
  channels: {
    ports(ctx) {
      const x = ctx.inputs[0]?.type.shape;
      if (!x || x.length < 2) return 'its input has no channel axis';
      const axis = ctx.attrs.axis < 0 ? ctx.attrs.axis + x.length : ctx.attrs.axis;
      if (axis !== 1) return `flattens at axis ${axis}, which moves the channels off axis 1`;
      return flattenLinks(x) ?? 'its input has symbolic channel or spatial dims';
    },
  },
});
