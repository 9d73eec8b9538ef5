import { FLOAT_DTYPES, INT_DTYPES, type DType } from '../onnx/dtype.js';
import { floatAttr, intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { countElements, input, mergeDims, requireDtype, requireRank, sameDtype, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';

export interface GemmAttrs {
  alpha: number;
  beta: number;
  transA: boolean;
  transB: boolean;
}

const GEMM_DTYPES: ReadonlySet<DType> = new Set([...FLOAT_DTYPES, ...INT_DTYPES]);

/** Y = alpha * A' B' + beta * C, A' [M, K], B' [K, N], C broadcastable to [M, N] (optional from opset 11). */
export const gemm = defineOp<GemmAttrs>({
  opType: 'Gemm',
  domain: '',
  summary: 'alpha * op(A) op(B) + beta * C: the fully connected layer',
  inputCount: [2, 3],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    if (opset < 7 && intAttr(node, 'broadcast', 0) === 0 && node.attributes['broadcast']) {
      throw new OpError('broadcast=0 (opset < 7) is not supported; convert the model to opset 7 or later');
    }
    return {
      alpha: floatAttr(node, 'alpha', 1),
      beta: floatAttr(node, 'beta', 1),
      transA: intAttr(node, 'transA', 0) !== 0,
      transB: intAttr(node, 'transB', 0) !== 0,
    };
  },
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, GEMM_DTYPES);
    sameDtype(ctx);
    if (ctx.opset < 11 && !ctx.inputs[2]) throw new OpError(`Gemm before opset 11 requires input C (opset ${ctx.opset})`);
    const a = requireRank(ctx, 0, [2]);
    const b = requireRank(ctx, 1, [2]);
    const [m, ka] = ctx.attrs.transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
    const [kb, n] = ctx.attrs.transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
    mergeDims(ka, kb, `inner dims of '${input(ctx, 0).name}' and '${input(ctx, 1).name}' (K)`);
    const c = ctx.inputs[2];
    if (c?.type.shape) {
      // C broadcasts one way only: each of its (right-aligned) dims is 1 or the output's.
      const target = [m, n].slice(2 - c.type.shape.length);
      const fits = c.type.shape.length <= 2 &&
        c.type.shape.every((d, i) => d === 1 || typeof d === 'string' || typeof target[i] === 'string' || d === target[i]);
      if (!fits) throw new OpError(`C '${c.name}' of shape [${c.type.shape.join(', ')}] does not broadcast to [${m}, ${n}]`);
    }
    return [typeOf(dtype, [m, n])];
  },
  macs(ctx, outputs) {
    const a = input(ctx, 0).type.shape!;
    const k = ctx.attrs.transA ? a[0]! : a[1]!;
    return countElements(outputs[0]?.shape) * countElements([k]);
  },
  lower: (ctx) =>
    single(
      'gemm',
      { ints: [Number(ctx.attrs.transA), Number(ctx.attrs.transB)], floats: [ctx.attrs.alpha, ctx.attrs.beta] },
      { params: ctx.node.inputs.slice(1) },
    ),
});
