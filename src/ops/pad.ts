import type { Dim } from '../onnx/graph.js';
import { floatAttr, intsAttr, stringAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, knownInts, normalizeAxes, requireRank, typeOf, unknownDim } from './shared/shapes.js';

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
});
