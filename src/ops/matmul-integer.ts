import type { Dim } from '../onnx/graph.js';
import type { DType } from '../onnx/dtype.js';
import { defineOp, OpError } from './op-def.js';
import { broadcastShapes, countElements, input, mergeDims, requireDtype, shapeOf, typeOf } from './shared/shapes.js';

const INT8_TYPES: ReadonlySet<DType> = new Set(['uint8', 'int8']);

/** numpy.matmul of int8/uint8 operands minus their zero points, accumulated in int32 (opset 10). */
export const matmulInteger = defineOp<Record<string, never>>({
  opType: 'MatMulInteger',
  domain: '',
  summary: 'integer matrix product (A − a_zero_point)(B − b_zero_point) → int32',
  inputCount: [2, 4],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    const a = requireDtype(ctx, 0, INT8_TYPES);
    const b = requireDtype(ctx, 1, INT8_TYPES);
    for (const [slot, dtype] of [[2, a], [3, b]] as const) {
      const zp = ctx.inputs[slot];
      if (zp && zp.type.dtype !== dtype) throw new OpError(`zero point '${zp.name}' has type ${zp.type.dtype}, but its operand is ${dtype}`);
    }
    if (!input(ctx, 0).type.shape || !input(ctx, 1).type.shape) return [typeOf('int32')];
    const [sa, sb] = [shapeOf(ctx, 0), shapeOf(ctx, 1)];
    if (sa.length === 0 || sb.length === 0) throw new OpError('MatMulInteger operands must have rank 1 or more');
    const a2 = sa.length === 1 ? [1, sa[0]!] : sa;
    const b2 = sb.length === 1 ? [sb[0]!, 1] : sb;
    mergeDims(a2[a2.length - 1]!, b2[b2.length - 2]!, `inner dims of '${input(ctx, 0).name}' and '${input(ctx, 1).name}' (K)`);
    const out: Dim[] = [...broadcastShapes(a2.slice(0, -2), b2.slice(0, -2))];
    if (sa.length > 1) out.push(a2[a2.length - 2]!);
    if (sb.length > 1) out.push(b2[b2.length - 1]!);
    return [typeOf('int32', out)];
  },
  macs(ctx, outputs) {
    const a = input(ctx, 0).type.shape;
    if (!a || !outputs[0]?.shape) return 0;
    return countElements(outputs[0].shape) * countElements([a[a.length - 1]!]);
  },
});
