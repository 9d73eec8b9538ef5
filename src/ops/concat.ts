import type { Dim } from '../onnx/graph.js';
import { intAttr, normalizeAxis } from './attrs.js';
import { defineOp, OpError, type KnownValue } from './op-def.js';
import { input, mergeDims, sameDtype, shapeOf, typeOf, unknownDim } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { offsetLinks, samePorts, staticChannels } from '../compress/prune/rules.js';

export interface ConcatAttrs {
  /** As written; may be negative (opset 11+). */
  axis: number;
}

export const concat = defineOp<ConcatAttrs>({
  opType: 'Concat',
  domain: '',
  summary: 'join tensors along one axis',
  inputCount: [1, Infinity],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    // Opsets 1-3 defaulted axis to 1; from 4 it is required.
    const axis = intAttr(node, 'axis', opset < 4 ? 1 : NaN);
    if (Number.isNaN(axis)) throw new OpError('Concat requires attribute axis');
    return { axis };
  },
  inferTypes(ctx) {
    const dtype = sameDtype(ctx);
    if (ctx.inputs.some((f) => f === undefined)) throw new OpError('Concat inputs cannot be omitted');
    if (ctx.inputs.some((f) => !f!.type.shape)) return [typeOf(dtype)];
    const shapes = ctx.inputs.map((_, i) => shapeOf(ctx, i));
    const rank = shapes[0]!.length;
    const axis = normalizeAxis(ctx.attrs.axis, rank);
    const out: Dim[] = [...shapes[0]!];
    let total: number | undefined = 0;
    shapes.forEach((shape, i) => {
      if (shape.length !== rank) {
        throw new OpError(`input '${input(ctx, i).name}' has rank ${shape.length}, but '${input(ctx, 0).name}' has rank ${rank}`);
      }
      shape.forEach((d, k) => {
        if (k !== axis) out[k] = mergeDims(out[k]!, d, `axis ${k} of '${input(ctx, i).name}' vs '${input(ctx, 0).name}'`);
      });
      const d = shape[axis]!;
      total = typeof d === 'number' && total !== undefined ? total + d : undefined;
    });
    out[axis] = total ?? (shapes.length === 1 ? shapes[0]![axis]! : unknownDim(ctx, 0, axis));
    return [typeOf(dtype, out)];
  },
  macs: () => 0,
  foldValues(ctx) {
    const parts = ctx.inputs.map((f) => f?.known);
    if (parts.some((p) => p === undefined)) return [undefined];
    const known = parts as KnownValue[];
    const rank = known[0]!.dims.length;
    const axis = normalizeAxis(ctx.attrs.axis, rank);
    // Row-major concat: for each outer index, append each part's block along the axis.
    const outer = known[0]!.dims.slice(0, axis).reduce((p, d) => p * d, 1);
    const values: Dim[] = [];
    for (let o = 0; o < outer; o++) {
      for (const part of known) {
        const block = part.dims.slice(axis).reduce((p, d) => p * d, 1);
        values.push(...part.values.slice(o * block, (o + 1) * block));
      }
    }
    const dims = [...known[0]!.dims];
    dims[axis] = known.reduce((s, p) => s + p.dims[axis]!, 0);
    return [{ dims, values }];
  },
  lower: (ctx) => single('concat', { ints: [ctx.attrs.axis] }),
  quant: quantizedInputsAndOutput(Infinity), // QLinearConcat,
  // Pruning: along axis 1 each input's channels sit at a running offset in the output; along any
  // other axis channel i of every input is channel i of the output.
  channels: {
    ports(ctx) {
      const rank = ctx.outputs[0]?.shape?.length;
      if (rank === undefined) return 'its output rank is unknown';
      const slots = ctx.inputs.map((_, i) => i);
      if (rank < 2 || normalizeAxis(ctx.attrs.axis, rank) !== 1) return samePorts(slots, [0]);
      const counts = staticChannels(ctx, 'in', slots);
      if (!counts) return 'an input has a symbolic channel count';
      return { inputs: slots, outputs: [0], coupling: offsetLinks({ side: 'out', slot: 0 }, counts.map((count, slot) => ({ ref: { side: 'in', slot }, count }))) };
    },
  },
});
