import type { Dim } from '../onnx/graph.js';
import { intsAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, knownInts, normalizeAxes, requireRank, typeOf } from './shared/shapes.js';
import { constantInts, single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { samePorts } from '../compress/prune/rules.js';
import { attributesToInputs, intsInput } from './shared/upgrade.js';

export interface UnsqueezeAttrs {
  /** The `axes` attribute of opsets < 13; from 13 the axes are input 1. */
  axes?: number[];
}

export const unsqueeze = defineOp<UnsqueezeAttrs>({
  opType: 'Unsqueeze',
  domain: '',
  summary: 'insert size-1 axes at the given positions of the output',
  inputCount: [1, 2],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    if (opset >= 13) return {};
    const axes = intsAttr(node, 'axes');
    if (!axes) throw new OpError('Unsqueeze before opset 13 requires attribute axes');
    return { axes };
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    let axes = ctx.attrs.axes;
    if (ctx.opset >= 13) {
      input(ctx, 1);
      requireRank(ctx, 1, [0, 1]);
      axes = knownInts(ctx, 1);
    }
    if (!axes || !x.type.shape) return [typeOf(x.type.dtype)];
    const rank = x.type.shape.length + axes.length;
    const insert = new Set(normalizeAxes(axes, rank));
    const rest = [...x.type.shape];
    const out: Dim[] = Array.from({ length: rank }, (_, i) => (insert.has(i) ? 1 : rest.shift()!));
    return [typeOf(x.type.dtype, out)];
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const known = ctx.inputs[0]?.known;
    const shape = outputs[0]?.shape;
    if (!known || !shape || shape.some((d) => typeof d !== 'number')) return [undefined];
    return [{ dims: shape as number[], values: known.values }];
  },
  lower(ctx) {
    const axes = ctx.opset >= 13 ? constantInts(ctx, 1, 'axes') : ctx.attrs.axes!;
    return single('unsqueeze', { inputs: [ctx.node.inputs[0]!], ints: axes });
  },
  quant: passThrough(),
  // Pruning: channels pass through when no axis is inserted before them (an input with none at all,
  // after a mean over them with keepdims 0, never gets here: prune/node.ts).
  channels: {
    ports(ctx) {
      const rank = ctx.outputs[0]?.shape?.length;
      const axes = ctx.opset >= 13 ? knownInts(ctx, 1) : ctx.attrs.axes;
      if (rank === undefined || !axes) return 'its axes are computed at run time';
      return normalizeAxes(axes, rank).some((a) => a < 2) ? 'inserts an axis before the channels' : samePorts([0], [0]);
    },
  },
  upgrade: (ctx) => (ctx.opset >= 13 ? [ctx.node] : [attributesToInputs(ctx.node, ['axes'], [intsInput(ctx, 'axes', ctx.attrs.axes)])]),
});
