import { intsAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, knownInts, normalizeAxes, requireRank, shapeOf, typeOf } from './shared/shapes.js';
import { constantInts, single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { samePorts } from '../compress/prune/rules.js';
import { attributesToInputs, intsInput } from './shared/upgrade.js';

export interface SqueezeAttrs {
  /** The `axes` attribute of opsets < 13; from 13 the axes are optional input 1. */
  axes?: number[];
}

export const squeeze = defineOp<SqueezeAttrs>({
  opType: 'Squeeze',
  domain: '',
  summary: 'drop size-1 axes (the listed ones, or all)',
  inputCount: [1, 2],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const axes = opset < 13 ? intsAttr(node, 'axes') : undefined;
    return axes ? { axes } : {};
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    let axes = ctx.attrs.axes;
    if (ctx.opset >= 13 && ctx.inputs[1]) {
      requireRank(ctx, 1, [1]);
      axes = knownInts(ctx, 1);
      if (!axes) return [typeOf(x.type.dtype)];
    }
    if (!x.type.shape) return [typeOf(x.type.dtype)];
    const shape = shapeOf(ctx, 0);
    if (!axes) {
      // Squeeze everything of size 1: a symbolic dim might be 1, so the rank is unknown.
      if (shape.some((d) => typeof d === 'string')) return [typeOf(x.type.dtype)];
      return [typeOf(x.type.dtype, shape.filter((d) => d !== 1))];
    }
    const drop = new Set(normalizeAxes(axes, shape.length));
    for (const a of drop) {
      const d = shape[a]!;
      if (typeof d === 'number' && d !== 1) throw new OpError(`cannot squeeze axis ${a} of '${x.name}': it has size ${d}`);
    }
    return [typeOf(x.type.dtype, shape.filter((_, i) => !drop.has(i)))];
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const known = ctx.inputs[0]?.known;
    const shape = outputs[0]?.shape;
    if (!known || !shape || shape.some((d) => typeof d !== 'number')) return [undefined];
    return [{ dims: shape as number[], values: known.values }];
  },
  lower(ctx) {
    const axes = ctx.opset >= 13 && ctx.inputs[1] ? constantInts(ctx, 1, 'axes') : ctx.attrs.axes ?? [];
    return single('squeeze', { inputs: [ctx.node.inputs[0]!], ints: axes });
  },
  quant: passThrough(),
  // Pruning: channels pass through when axes 0 and 1 stay.
  channels: {
    ports(ctx) {
      const rank = ctx.inputs[0]?.type.shape?.length;
      const axes = ctx.opset >= 13 ? (ctx.inputs[1] ? knownInts(ctx, 1) : undefined) : ctx.attrs.axes;
      if (rank === undefined || !axes) return 'squeezes axes that are not listed statically (a pruned channel count of 1 would vanish)';
      return normalizeAxes(axes, rank).some((a) => a < 2) ? 'squeezes axis 0 or 1, which moves the channels' : samePorts([0], [0]);
    },
  },
  upgrade: (ctx) => (ctx.opset >= 13 ? [ctx.node] : [attributesToInputs(ctx.node, ['axes'], [intsInput(ctx, 'axes', ctx.attrs.axes)])]),
});
