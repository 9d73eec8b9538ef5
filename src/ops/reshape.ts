import type { Dim } from '../onnx/graph.js';
import { intAttr, intsAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import {
  divideProducts, input, isStatic, productDim, requireRank, symbolicProduct, typeOf, unknownDim,
} from './shared/shapes.js';
import { constantInts, single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { channelReshape } from '../compress/prune/rules.js';
import { int64 } from '../onnx/tensor.js';

export interface ReshapeAttrs {
  /** Opset 14+: a 0 in the shape means size 0, not "copy the input dim". */
  allowZero: boolean;
  /** The `shape` attribute of opsets < 5; from 5 the shape is input 1. */
  shape?: number[];
}

export const reshape = defineOp<ReshapeAttrs>({
  opType: 'Reshape',
  domain: '',
  summary: 'same data, new shape (0 copies an input dim, -1 is inferred)',
  inputCount: [1, 2],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const attrs: ReshapeAttrs = { allowZero: opset >= 14 && intAttr(node, 'allowzero', 0) !== 0 };
    const shape = opset < 5 ? intsAttr(node, 'shape') : undefined;
    if (shape) attrs.shape = shape;
    return attrs;
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    let target: Dim[] | undefined = ctx.attrs.shape;
    if (ctx.opset >= 5) {
      const shapeInput = input(ctx, 1);
      if (shapeInput.type.dtype !== 'int64') throw new OpError(`shape '${shapeInput.name}' must be int64, got ${shapeInput.type.dtype}`);
      const [length] = requireRank(ctx, 1, [1]);
      target = shapeInput.known?.values;
      // Contents unknown but length known: the rank is all we can say.
      if (!target) {
        if (typeof length !== 'number') return [typeOf(x.type.dtype)];
        return [typeOf(x.type.dtype, Array.from({ length }, (_, i) => unknownDim(ctx, 0, i)))];
      }
    }
    if (!target) throw new OpError('Reshape before opset 5 requires attribute shape');
    return [typeOf(x.type.dtype, resolveShape(target, x.type.shape, { allowZero: ctx.attrs.allowZero, fresh: (i) => unknownDim(ctx, 0, i) }))];
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const known = ctx.inputs[0]?.known;
    const shape = outputs[0]?.shape;
    if (!known || !isStatic(shape)) return [undefined];
    return [{ dims: shape, values: known.values }];
  },
  lower(ctx) {
    const shape = ctx.attrs.shape ?? constantInts(ctx, 1, 'shape');
    return single('reshape', { inputs: [ctx.node.inputs[0]!], ints: [Number(ctx.attrs.allowZero), ...shape] });
  },
  quant: passThrough(),
  // Pruning: a flatten ([N, C, …] → [N, C·S]) or a reshape that keeps axes 0 and 1; a stored target's
  // channel entry is rewritten.
  channels: {
    ports(ctx) {
      const r = channelReshape(ctx, ctx.attrs.shape ?? ctx.inputs[1]?.known?.values, ctx.attrs.allowZero);
      if (typeof r === 'string') return r;
      if (r.rewrite && !ctx.attrs.shape && !ctx.inputs[1]?.constant) return 'its target shape is computed at run time; run `slim optimize` first to fold it';
      return r.ports;
    },
    resize(ctx, keep) {
      const target = ctx.attrs.shape ?? ctx.inputs[1]?.known?.values;
      const r = channelReshape(ctx, target, ctx.attrs.allowZero);
      if (typeof r === 'string' || !r.rewrite || !keep.outputs[0] || !target) return {};
      const shape = target.map((d, i) => (i === 1 ? keep.outputs[0]!.length : Number(d)));
      return ctx.attrs.shape ? { attributes: { shape: { type: 'ints', value: shape } } } : { inputs: { 1: int64([shape.length], shape) } };
    },
  },
});

/** Apply Reshape's 0 and -1 rules to `target` for an input of shape `from` (undefined: unknown). */
function resolveShape(
  target: readonly Dim[],
  from: readonly Dim[] | undefined,
  options: { allowZero: boolean; fresh: (axis: number) => string },
): Dim[] {
  let inferAt = -1;
  const out = target.map((d, i): Dim => {
    if (typeof d === 'string') return d;
    if (d === -1) {
      if (inferAt >= 0) throw new OpError(`shape [${target.join(', ')}] has more than one -1`);
      inferAt = i;
      return d;
    }
    if (d < -1 || !Number.isInteger(d)) throw new OpError(`shape [${target.join(', ')}] has invalid entry ${d}`);
    if (d === 0 && !options.allowZero) {
      if (!from) return options.fresh(i);
      if (i >= from.length) throw new OpError(`shape [${target.join(', ')}] copies dim ${i} (a 0), but the input has rank ${from.length}`);
      return from[i]!;
    }
    return d;
  });
  if (options.allowZero && inferAt >= 0 && target.includes(0)) {
    throw new OpError(`shape [${target.join(', ')}] has both 0 and -1, which allowzero=1 forbids`);
  }
  const total = from && symbolicProduct(from);
  if (inferAt >= 0) {
    const rest = symbolicProduct(out.filter((_, i) => i !== inferAt));
    const quotient = total && divideProducts(total, rest);
    if (quotient && !Number.isInteger(quotient.factor)) {
      throw new OpError(`cannot reshape [${from!.join(', ')}] to [${target.join(', ')}]: the element count does not divide`);
    }
    out[inferAt] = quotient ? productDim(quotient, options.fresh(inferAt)) : options.fresh(inferAt);
  } else if (total && total.symbols.length === 0) {
    const count = symbolicProduct(out);
    if (count.symbols.length === 0 && count.factor !== total.factor) {
      throw new OpError(`cannot reshape [${from!.join(', ')}] (${total.factor} elements) to [${out.join(', ')}] (${count.factor} elements)`);
    }
  }
  return out;
}
