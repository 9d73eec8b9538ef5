import type { DType } from '../onnx/dtype.js';
import { defineOp, OpError } from './op-def.js';
import { checkQuantParams, parseQuantAxisAttrs, type QuantAxisAttrs } from './shared/quant.js';
import { input, requireDtype, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';

export type DequantizeLinearAttrs = QuantAxisAttrs;

const X_DTYPES: ReadonlySet<DType> = new Set(['uint8', 'int8', 'int32']);
const X_DTYPES_21: ReadonlySet<DType> = new Set(['uint8', 'int8', 'int32', 'uint16', 'int16']);
const SCALE_DTYPES_19: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16']);

/** y = (x - zero_point) * scale; y is float32 before opset 19 and the scale's type from 19. */
export const dequantizeLinear = defineOp<DequantizeLinearAttrs>({
  opType: 'DequantizeLinear',
  domain: '',
  summary: 'int8/uint8/int32 → float with scale and zero point (per tensor or per axis)',
  inputCount: [2, 3],
  outputCount: [1, 1],
  parseAttrs: (node, opset) => parseQuantAxisAttrs(node, opset),
  inferTypes(ctx) {
    const xType = requireDtype(ctx, 0, ctx.opset >= 21 ? X_DTYPES_21 : X_DTYPES);
    const scale = input(ctx, 1);
    const scaleTypes = ctx.opset >= 19 ? SCALE_DTYPES_19 : new Set<DType>(['float32']);
    if (!scaleTypes.has(scale.type.dtype)) throw new OpError(`scale '${scale.name}' has type ${scale.type.dtype}; expected ${[...scaleTypes].join(' or ')}`);
    const zero = ctx.inputs[2];
    if (zero && zero.type.dtype !== xType) throw new OpError(`zero point '${zero.name}' has type ${zero.type.dtype}, but x is ${xType}`);
    checkQuantParams(ctx);
    return [typeOf(ctx.opset >= 19 ? scale.type.dtype : 'float32', input(ctx, 0).type.shape)];
  },
  macs: () => 0,
  lower(ctx) {
    const x = ctx.node.inputs[0]!;
    // After a QuantizeLinear the pair already ran as fake quantization: pass its result on.
    if (ctx.producer(x)?.opType === 'QuantizeLinear') return single('identity', { inputs: [x] });
    return single('dequantize', { ints: [ctx.attrs.axis] });
  },
});
