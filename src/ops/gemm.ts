import { FLOAT_DTYPES, INT_DTYPES, type DType } from '../onnx/dtype.js';
import { floatAttr, intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { countElements, input, mergeDims, requireDtype, requireRank, sameDtype, typeOf, unknownDim } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { ACTIVATION, isConstantFloat, isFloat32 } from '../compress/quantize/pattern.js';
import { foldShiftIntoBias } from '../compress/prune/rules.js';

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
    // A is rank 2 by the spec; its shape can be unknown after a Squeeze without axes of [N, C, 1, 1]
    // (torch's `.squeeze()` before the classifier), where a symbolic N might also be 1.
    const a = input(ctx, 0).type.shape ? requireRank(ctx, 0, [2]) : [unknownDim(ctx, 0, 0), unknownDim(ctx, 0, 1)];
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
    // K from B (a weight, its shape known) rather than A, whose shape may be unknown.
    const b = input(ctx, 1).type.shape!;
    const k = ctx.attrs.transB ? b[1]! : b[0]!;
    return countElements(outputs[0]?.shape) * countElements([k]);
  },
  lower: (ctx) =>
    single(
      'gemm',
      { ints: [Number(ctx.attrs.transA), Number(ctx.attrs.transB)], floats: [ctx.attrs.alpha, ctx.attrs.beta] },
      { params: ctx.node.inputs.slice(1) },
    ),
  // QGemm: int8 weight per output feature, int32 bias with scale s_a·s_b (only for alpha = beta = 1 and a
  // 1-D C: otherwise C is not a plain bias); a graph output stays float (QGemm can output float).
  quant: {
    mark(ctx) {
      if (!isFloat32(ctx, 0) || !isConstantFloat(ctx, 1)) return undefined;
      const c = ctx.inputs[2];
      const plainBias = c !== undefined && isConstantFloat(ctx, 2) && c.type.shape?.length === 1 && ctx.attrs.alpha === 1 && ctx.attrs.beta === 1;
      if (c && !plainBias) return undefined;
      return {
        inputs: [ACTIVATION, { role: 'weight', axis: ctx.attrs.transB ? 0 : 1 }, ...(plainBias ? [{ role: 'bias', input: 0, weight: 1 } as const] : [])],
        outputs: [ACTIVATION],
      };
    },
  },
  // Pruning: input features index B's K axis, output features its N axis and C's last axis (unless C broadcasts).
  channels: {
    ports(ctx) {
      if (ctx.attrs.transA) return 'transA=1 puts the features of A on axis 0';
      if (!ctx.inputs[1]?.constant) return 'its B is computed, not stored (a quantized model?); prune before quantizing';
      return { inputs: [0], outputs: [0], coupling: 'independent' };
    },
    params(ctx) {
      const t = ctx.attrs.transB;
      const c = ctx.inputs[2]?.type.shape;
      return [
        { slot: 1, port: { side: 'in', slot: 0 }, axis: t ? 1 : 0, role: 'weight' },
        { slot: 1, port: { side: 'out', slot: 0 }, axis: t ? 0 : 1, role: 'weight' },
        ...(c && c.length > 0 && c[c.length - 1] !== 1 ? [{ slot: 2, port: { side: 'out', slot: 0 }, axis: c.length - 1, role: 'bias' } as const] : []),
      ];
    },
    // y = α·A·B + β·C: a removed input feature's mean contribution moves into C (as [N]), scaled by α/β.
    compensate(ctx, shift, keepOut) {
      const b = ctx.inputs[1]?.constant;
      const c = ctx.inputs[2];
      const rows = c?.type.shape?.length === 2 ? c.type.shape[0] : 1;
      if (b?.dtype !== 'float32' || ctx.attrs.beta === 0 || (c && (!c.constant || rows !== 1))) return {};
      const t = ctx.attrs.transB;
      return foldShiftIntoBias({ weight: b, outAxis: t ? 0 : 1, inAxis: t ? 1 : 0, bias: c?.constant, slot: 2, scale: ctx.attrs.alpha / ctx.attrs.beta }, shift, keepOut);
    },
  },
});
