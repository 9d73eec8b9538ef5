import { foldShiftIntoBias } from '../compress/prune/rules.js';
import type { Dim } from '../onnx/graph.js';
import { FLOAT_DTYPES, INT_DTYPES, type DType } from '../onnx/dtype.js';
import { defineOp, OpError } from './op-def.js';
import { broadcastShapes, countElements, input, mergeDims, requireDtype, sameDtype, shapeOf, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { ACTIVATION, isConstantFloat, isFloat32 } from '../compress/quantize/pattern.js';

const MATMUL_DTYPES: ReadonlySet<DType> = new Set([...FLOAT_DTYPES, ...INT_DTYPES]);

/**
 * numpy.matmul: a 1-D left operand is a row (its axis is dropped from the result), a 1-D right
 * operand a column; leading batch axes broadcast.
 */
export const matmul = defineOp<Record<string, never>>({
  opType: 'MatMul',
  domain: '',
  summary: 'matrix product with numpy batch broadcasting and 1-D promotion',
  inputCount: [2, 2],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, MATMUL_DTYPES);
    sameDtype(ctx);
    if (!input(ctx, 0).type.shape || !input(ctx, 1).type.shape) return [typeOf(dtype)];
    const a = shapeOf(ctx, 0);
    const b = shapeOf(ctx, 1);
    if (a.length === 0 || b.length === 0) {
      throw new OpError(`MatMul operands must have rank 1 or more, got [${a.join(', ')}] and [${b.join(', ')}]`);
    }
    const a2 = a.length === 1 ? [1, a[0]!] : a;
    const b2 = b.length === 1 ? [b[0]!, 1] : b;
    mergeDims(a2[a2.length - 1]!, b2[b2.length - 2]!, `inner dims of '${input(ctx, 0).name}' [${a.join(', ')}] and '${input(ctx, 1).name}' [${b.join(', ')}] (K)`);
    const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2));
    const out: Dim[] = [...batch];
    if (a.length > 1) out.push(a2[a2.length - 2]!);
    if (b.length > 1) out.push(b2[b2.length - 1]!);
    return [typeOf(dtype, out)];
  },
  // Every output element is a dot product of length K.
  macs(ctx, outputs) {
    const a = input(ctx, 0).type.shape;
    if (!a || !outputs[0]?.shape) return 0;
    return countElements(outputs[0].shape) * countElements([a[a.length - 1]!]);
  },
  // A constant right operand is a layer's weight (PyTorch exports some Linear layers as MatMul).
  lower: (ctx) => single('matmul', {}, { params: [ctx.node.inputs[1]!] }),
  // QLinearMatMul: a constant 2-D right operand is a weight quantized per column; otherwise both operands
  // are activations.
  quant: {
    mark(ctx) {
      if (!isFloat32(ctx, 0) || !isFloat32(ctx, 1)) return undefined;
      const weight = isConstantFloat(ctx, 1);
      const rank = ctx.inputs[1]?.type.shape?.length;
      if (weight && rank !== 2) return undefined;
      return { inputs: [ACTIVATION, weight ? { role: 'weight', axis: 1 } : ACTIVATION], outputs: [ACTIVATION] };
    },
  },
  // Pruning: A [..., K] × a stored B [K, N] is a linear layer (PyTorch's Linear on a 2-D input, or on
  // a channels-last activation, where A carries its channels on the last axis); other forms are boundaries.
  channels: {
    anyAxis: true,
    ports(ctx) {
      const rank = ctx.inputs[0]?.type.shape?.length;
      if (rank === undefined || rank < 2 || ctx.inputs[1]?.type.shape?.length !== 2) return 'only A [..., K] × B [K, N] is pruned';
      if (!ctx.inputs[1]?.constant) return 'its B is computed, not stored';
      if (ctx.channelAxes[0] !== rank - 1) return `A carries its channels on axis ${ctx.channelAxes[0]}, not on the last axis, which MatMul contracts`;
      return { inputs: [0], outputs: [0], coupling: 'independent', outputAxes: [rank - 1] };
    },
    params: () => [
      { slot: 1, port: { side: 'in', slot: 0 }, axis: 0, role: 'weight' },
      { slot: 1, port: { side: 'out', slot: 0 }, axis: 1, role: 'weight' },
    ],
    // No bias slot: the removed inputs' means (Σ_k shift[k]·B[k, n]) are added after it, on the last
    // axis. For A [N, K] only: the means are measured on axis 1.
    compensate(ctx, shift, keepOut) {
      const b = ctx.inputs[1]?.constant;
      if (b?.dtype !== 'float32' || ctx.inputs[0]?.type.shape?.length !== 2) return {};
      const bias = foldShiftIntoBias({ weight: b, outAxis: 1, inAxis: 0, bias: undefined, slot: 0 }, shift, keepOut).inputs![0]!;
      return { append: { slot: 0, opType: 'Add', operand: bias } };
    },
  },
});
