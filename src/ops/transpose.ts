import { intsAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, shapeOf, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { samePorts } from '../compress/prune/rules.js';

export interface TransposeAttrs {
  /** Undefined: reverse the axes. */
  perm?: number[];
}

export const transpose = defineOp<TransposeAttrs>({
  opType: 'Transpose',
  domain: '',
  summary: 'permute axes (default: reverse them)',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs(node) {
    const perm = intsAttr(node, 'perm');
    return perm ? { perm } : {};
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    if (!x.type.shape) return [typeOf(x.type.dtype)];
    const shape = shapeOf(ctx, 0);
    const perm = ctx.attrs.perm ?? shape.map((_, i) => shape.length - 1 - i);
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== shape.length || sorted.some((p, i) => p !== i)) {
      throw new OpError(`perm [${perm.join(', ')}] is not a permutation of the ${shape.length} axes of '${x.name}'`);
    }
    return [typeOf(x.type.dtype, perm.map((p) => shape[p]!))];
  },
  macs: () => 0,
  passesThrough(ctx) {
    const rank = ctx.inputs[0]?.type.shape?.length;
    if (rank === undefined) return undefined;
    const perm = ctx.attrs.perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    return perm.every((p, i) => p === i) ? 0 : undefined;
  },
  lower(ctx) {
    const rank = shapeOf(ctx, 0).length;
    return single('transpose', { ints: ctx.attrs.perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i) });
  },
  quant: passThrough(),
  // Pruning: channels keep their identity and move to the axis the permutation puts them on
  // (ConvNeXt: NCHW → NHWC around its LayerNorm and MLP, and back).
  channels: {
    anyAxis: true,
    ports(ctx) {
      const rank = ctx.inputs[0]?.type.shape?.length;
      if (rank === undefined) return 'its input rank is not known';
      const perm = ctx.attrs.perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      return samePorts([0], [0], perm.indexOf(ctx.channelAxes[0]!));
    },
  },
});
