import { dtypeFromOnnx, integerRange, type DType } from '../onnx/dtype.js';
import { intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { checkQuantParams, parseQuantAxisAttrs, type QuantAxisAttrs } from './shared/quant.js';
import { input, requireDtype, typeOf } from './shared/shapes.js';
import { constantScalar, single } from '../engine/lowering.js';

export interface QuantizeLinearAttrs extends QuantAxisAttrs {
  /** Opset 19+: clamp float8 outputs instead of overflowing (no effect on int8/uint8). */
  saturate: boolean;
  /** Opset 21+: output type when there is no zero point; undefined = uint8. */
  outputDtype?: DType;
}

const X_DTYPES_10: ReadonlySet<DType> = new Set(['float32', 'int32']);
const X_DTYPES_19: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16', 'int32']);
const Y_DTYPES: ReadonlySet<DType> = new Set(['uint8', 'int8', 'uint16', 'int16']);

/** y = saturate(round(x / scale) + zero_point), per tensor or per axis; y has the zero point's type (default uint8). */
export const quantizeLinear = defineOp<QuantizeLinearAttrs>({
  opType: 'QuantizeLinear',
  domain: '',
  summary: 'float → int8/uint8 with scale and zero point (per tensor or per axis)',
  inputCount: [2, 3],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const attrs: QuantizeLinearAttrs = { ...parseQuantAxisAttrs(node, opset), saturate: opset < 19 || intAttr(node, 'saturate', 1) !== 0 };
    const code = opset >= 21 ? intAttr(node, 'output_dtype', 0) : 0;
    if (code !== 0) {
      const dtype = dtypeFromOnnx(code);
      if (!dtype || !Y_DTYPES.has(dtype)) throw new OpError(`output_dtype ${code} is not one of ${[...Y_DTYPES].join(', ')}`);
      attrs.outputDtype = dtype;
    }
    return attrs;
  },
  inferTypes(ctx) {
    requireDtype(ctx, 0, ctx.opset >= 19 ? X_DTYPES_19 : X_DTYPES_10);
    const scale = input(ctx, 1);
    // Before 19 the scale is float32; from 19 it has x's type.
    const scaleType = ctx.opset >= 19 ? input(ctx, 0).type.dtype : 'float32';
    if (scale.type.dtype !== scaleType) throw new OpError(`scale '${scale.name}' has type ${scale.type.dtype}; expected ${scaleType}`);
    const zero = ctx.inputs[2];
    const dtype = zero?.type.dtype ?? ctx.attrs.outputDtype ?? 'uint8';
    if (!Y_DTYPES.has(dtype) || ((dtype === 'uint16' || dtype === 'int16') && ctx.opset < 21)) {
      throw new OpError(`zero point '${zero?.name}' has type ${dtype}; QuantizeLinear at opset ${ctx.opset} gives uint8 or int8`);
    }
    if (zero && ctx.attrs.outputDtype && ctx.attrs.outputDtype !== dtype) {
      throw new OpError(`output_dtype ${ctx.attrs.outputDtype} contradicts zero point '${zero.name}' of type ${dtype}`);
    }
    checkQuantParams(ctx);
    return [typeOf(dtype, input(ctx, 0).type.shape)];
  },
  macs: () => 0,
  lower(ctx) {
    // Training runs a Q → DQ pair as one fake-quant op (straight-through gradients), QAT-style.
    const [x, scale, zero] = ctx.node.inputs;
    const readers = ctx.consumers(ctx.node.outputs[0]!);
    const paired = readers.length > 0 && readers.every((n) => n.opType === 'DequantizeLinear' && n.inputs[1] === scale && (n.inputs[2] ?? '') === (zero ?? ''));
    if (!paired) throw new OpError('training runs QuantizeLinear only when every reader is a DequantizeLinear with the same scale and zero point');
    const dtype = ctx.inputs[2]?.type.dtype ?? ctx.attrs.outputDtype ?? 'uint8';
    const typeRange = dtype === 'int8' || dtype === 'uint8' ? integerRange(dtype) : undefined;
    if (!typeRange) throw new OpError(`fake quantization supports int8 and uint8, not ${dtype}`);
    const [qmin, qmax] = ctx.quantRange ?? typeRange;
    const scaleValue = input(ctx, 1).constant;
    if (!scaleValue) throw new OpError(`scale '${scale}' must be a constant for training`);
    if (scaleValue.data.length === 1) {
      const zp = constantScalar(ctx, 2, 'zero point') ?? 0;
      return single('fake_quant', { inputs: [x!], ints: [0, 0, qmin, qmax, zp], floats: [Number(scaleValue.data[0])] });
    }
    if (!zero) throw new OpError('per-channel fake quantization needs a zero point input');
    return single('fake_quant', { ints: [1, ctx.attrs.axis, qmin, qmax, 0] });
  },
});
