import type { Dim } from '../onnx/graph.js';
import { intAttr, normalizeAxis } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { takeKnown } from './shared/known.js';
import { input, typeOf } from './shared/shapes.js';
import { passThrough } from '../compress/quantize/pattern.js';

export interface GatherAttrs {
  axis: number;
}

/**
 * out = data indexed along `axis` by `indices`: shape data[:axis] + indices + data[axis+1:]. torch.onnx
 * emits it on Shape outputs (x.size(0)), so known values fold, symbols included.
 */
export const gather = defineOp<GatherAttrs>({
  opType: 'Gather',
  domain: '',
  summary: 'take entries along an axis by index (negative indices count from the end)',
  inputCount: [2, 2],
  outputCount: [1, 1],
  parseAttrs: (node) => ({ axis: intAttr(node, 'axis', 0) }),
  inferTypes(ctx) {
    const data = input(ctx, 0);
    const indices = input(ctx, 1);
    if (indices.type.dtype !== 'int64' && indices.type.dtype !== 'int32') {
      throw new OpError(`indices '${indices.name}' must be int32 or int64, got ${indices.type.dtype}`);
    }
    if (!data.type.shape || !indices.type.shape) return [typeOf(data.type.dtype)];
    const axis = normalizeAxis(ctx.attrs.axis, data.type.shape.length);
    const size = data.type.shape[axis]!;
    const bad = typeof size === 'number' ? resolveIndices(ctx.inputs[1]?.known?.values, size) : undefined;
    if (bad === null) throw new OpError(`indices '${indices.name}' are out of range for an axis of ${size}`);
    const out: Dim[] = [...data.type.shape.slice(0, axis), ...indices.type.shape, ...data.type.shape.slice(axis + 1)];
    return [typeOf(data.type.dtype, out)];
  },
  macs: () => 0,
  foldValues(ctx) {
    const data = ctx.inputs[0]?.known;
    const known = ctx.inputs[1]?.known;
    if (!data || !known) return [undefined];
    const axis = normalizeAxis(ctx.attrs.axis, data.dims.length);
    const indices = resolveIndices(known.values, data.dims[axis]!);
    if (!indices) return [undefined];
    const taken = takeKnown(data, axis, indices);
    return [{ dims: [...data.dims.slice(0, axis), ...known.dims, ...data.dims.slice(axis + 1)], values: taken.values }];
  },
  quant: passThrough(),
});

/** Indices made non-negative; null when one is out of range; undefined when they are not all known numbers. */
function resolveIndices(values: readonly Dim[] | undefined, size: number): number[] | null | undefined {
  if (!values || values.some((v) => typeof v !== 'number')) return undefined;
  const out = (values as number[]).map((i) => (i < 0 ? i + size : i));
  return out.some((i) => i < 0 || i >= size) ? null : out;
}
