import type { Dim } from '../onnx/graph.js';
import { intAttr, normalizeAxis } from './attrs.js';
import { defineOp, OpError, type KnownValue } from './op-def.js';
import { input, mergeDims, sameDtype, shapeOf, typeOf, unknownDim } from './shared/shapes.js';
import { single } from '../engine/lowering.js';

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
});
