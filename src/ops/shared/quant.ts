import type { Dim, Node } from '../../onnx/graph.js';
import { intAttr, normalizeAxis } from '../attrs.js';
import { OpError, type OpContext } from '../op-def.js';
import { input, mergeDims } from './shapes.js';

/** axis: per-axis quantization axis (opset 13+, default 1); blockSize: opset 21 blocked scales (0 = off). */
export interface QuantAxisAttrs {
  axis: number;
  blockSize: number;
}

/**
 * Checks the scale (input 1) and zero point (input 2) of QuantizeLinear / DequantizeLinear against x:
 * a scalar (or one-element vector) for per-tensor, a vector of x.shape[axis] for per-axis (opset 13+),
 * x's shape with the axis divided by block_size for blocked (opset 21+). The zero point matches the scale.
 */
export function checkQuantParams<A extends QuantAxisAttrs>(ctx: OpContext<A>): void {
  const x = input(ctx, 0).type.shape;
  const scale = input(ctx, 1);
  const zero = ctx.inputs[2];
  if (zero?.type.shape && scale.type.shape) {
    const [s, z] = [scale.type.shape, zero.type.shape];
    if (s.length !== z.length) throw new OpError(`zero point '${zero.name}' [${z.join(', ')}] must have the shape of scale '${scale.name}' [${s.join(', ')}]`);
    s.forEach((d, i) => mergeDims(d, z[i]!, `zero point '${zero.name}' vs scale '${scale.name}' axis ${i}`));
  }
  const s = scale.type.shape;
  if (!s || !x) return;
  const perTensor = s.length === 0 || (s.length === 1 && s[0] === 1);
  if (perTensor) return;
  if (ctx.opset < 13) throw new OpError(`scale '${scale.name}' must be a scalar before opset 13, got [${s.join(', ')}]`);
  const axis = normalizeAxis(ctx.attrs.axis, x.length);
  if (ctx.attrs.blockSize > 0) {
    if (s.length !== x.length) throw new OpError(`blocked scale '${scale.name}' must have the rank of x (${x.length})`);
    s.forEach((d, i) => {
      const xd = x[i]!;
      const want: Dim = i === axis && typeof xd === 'number' ? Math.ceil(xd / ctx.attrs.blockSize) : xd;
      mergeDims(d, want, `blocked scale '${scale.name}' axis ${i}`);
    });
    return;
  }
  if (s.length !== 1) throw new OpError(`scale '${scale.name}' must be a scalar or a 1-D vector, got [${s.join(', ')}]`);
  mergeDims(s[0]!, x[axis]!, `per-axis scale '${scale.name}' length vs axis ${axis} of x`);
}

export function parseQuantAxisAttrs(node: Node, opset: number): QuantAxisAttrs {
  const blockSize = opset >= 21 ? intAttr(node, 'block_size', 0) : 0;
  if (blockSize < 0) throw new OpError(`block_size must not be negative, got ${blockSize}`);
  return { axis: opset >= 13 ? intAttr(node, 'axis', 1) : 1, blockSize };
}
