import type { Dim } from '../onnx/graph.js';
import { floatAttr, intsAttr, stringAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, knownInts, normalizeAxes, requireRank, typeOf, unknownDim, shapeOf } from './shared/shapes.js';
import { samePorts } from '../compress/prune/rules.js';
import { constantInts, constantScalar, single } from '../engine/lowering.js';
import { attributesToInputs, floatScalar, intsInput } from './shared/upgrade.js';

export type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';
const MODES: readonly PadMode[] = ['constant', 'reflect', 'edge', 'wrap'];

/** Opsets < 11 give pads and value as attributes; from 11 pads, constant_value (and axes at 18) are inputs. */
export interface PadAttrs {
  mode: PadMode;
  pads?: number[];
  value?: number;
}

export const pad = defineOp<PadAttrs>({
  opType: 'Pad',
  domain: '',
  summary: 'pad (or crop, with negative pads) each axis at both ends',
  inputCount: [1, 4],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const mode = stringAttr(node, 'mode', 'constant') as PadMode;
    if (!MODES.includes(mode) || (mode === 'wrap' && opset < 19)) {
      throw new OpError(`mode '${mode}' is not one of ${MODES.slice(0, opset >= 19 ? 4 : 3).join(', ')}`);
    }
    if (opset >= 11) return { mode };
    const pads = intsAttr(node, 'pads');
    if (!pads) throw new OpError('Pad before opset 11 requires attribute pads');
    return { mode, pads, value: floatAttr(node, 'value', 0) };
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    const shape = x.type.shape;
    if (ctx.opset >= 11) requireRank(ctx, 1, [1]);
    if (!shape) return [typeOf(x.type.dtype)];
    const rank = shape.length;
    const pads = ctx.opset >= 11 ? knownInts(ctx, 1) : ctx.attrs.pads;
    let axes = shape.map((_, i) => i);
    if (ctx.opset >= 18 && ctx.inputs[3]) {
      const given = knownInts(ctx, 3);
      axes = given ? normalizeAxes(given, rank) : [];
      if (!given) return [typeOf(x.type.dtype, shape.map((_, i) => unknownDim(ctx, 0, i)))];
    }
    if (!pads) return [typeOf(x.type.dtype, shape.map((_, i) => unknownDim(ctx, 0, i)))];
    if (pads.length !== 2 * axes.length) {
      throw new OpError(`pads has ${pads.length} values [${pads.join(', ')}], expected ${2 * axes.length} (begin and end for ${axes.length} axes)`);
    }
    const out: Dim[] = [...shape];
    axes.forEach((axis, k) => {
      const d = shape[axis]!;
      const grow = pads[k]! + pads[k + axes.length]!;
      if (typeof d === 'string') out[axis] = grow === 0 ? d : unknownDim(ctx, 0, axis);
      else if (d + grow < 0) throw new OpError(`pads [${pads.join(', ')}] crop axis ${axis} of size ${d} below zero`);
      else out[axis] = d + grow;
    });
    return [typeOf(x.type.dtype, out)];
  },
  macs: () => 0,
  // Every pad zero (torch.onnx writes one before an AveragePool at opset 9/10); the mode does not matter then.
  passesThrough(ctx) {
    const pads = ctx.opset >= 11 ? knownInts(ctx, 1) : ctx.attrs.pads;
    return pads?.every((p) => p === 0) ? 0 : undefined;
  },
  // Pruning: channels pass through unless the channel axis itself is padded.
  channels: {
    ports(ctx) {
      const rank = ctx.inputs[0]?.type.shape?.length;
      if (rank === undefined) return 'its input rank is unknown';
      const pads = ctx.opset >= 11 ? knownInts(ctx, 1) : ctx.attrs.pads;
      const given = ctx.opset >= 18 && ctx.inputs[3] ? knownInts(ctx, 3) : Array.from({ length: rank }, (_, i) => i);
      if (!pads || !given) return 'its pads or axes are computed at run time';
      const k = normalizeAxes(given, rank).indexOf(1);
      if (k >= 0 && (pads[k] !== 0 || pads[k + given.length] !== 0)) return `pads the channel axis (pads [${pads.join(', ')}])`;
      return samePorts([0], [0]);
    },
  },
  lower(ctx) {
    const rank = shapeOf(ctx, 0).length;
    const pads = ctx.opset >= 11 ? constantInts(ctx, 1, 'pads') : ctx.attrs.pads!;
    const axes = ctx.opset >= 18 && ctx.inputs[3] ? normalizeAxes(constantInts(ctx, 3, 'axes'), rank) : Array.from({ length: rank }, (_, i) => i);
    const value = (ctx.opset >= 11 ? constantScalar(ctx, 2, 'constant_value') : ctx.attrs.value) ?? 0;
    const begin = new Array<number>(rank).fill(0);
    const end = new Array<number>(rank).fill(0);
    axes.forEach((axis, k) => {
      begin[axis] = pads[k]!;
      end[axis] = pads[k + axes.length]!;
    });
    const first = begin.findIndex((b, axis) => b !== 0 || end[axis] !== 0);
    if (first < 0) return single('identity', { inputs: [ctx.node.inputs[0]!] });
    const mode = MODES.indexOf(ctx.attrs.mode);
    if (mode > 0 && first < 2) throw new OpError(`${ctx.attrs.mode} padding of the batch or channel axis is not supported for training`);
    // ATen lists (begin, end) pairs from the last axis backwards, down to the first padded one.
    const list: number[] = [];
    for (let axis = rank - 1; axis >= first; axis--) list.push(begin[axis]!, end[axis]!);
    return single('pad', { inputs: [ctx.node.inputs[0]!], ints: [mode, ...list], floats: [value] });
  },
  upgrade(ctx) {
    if (ctx.opset >= 11) return [ctx.node];
    const value = ctx.attrs.value ? ctx.constant(`${ctx.node.name}_value`, floatScalar(input(ctx, 0).type.dtype, ctx.attrs.value)) : '';
    return [attributesToInputs(ctx.node, ['pads', 'value'], [intsInput(ctx, 'pads', ctx.attrs.pads), value])];
  },
});
