import { defineOp } from './op-def.js';
import { input, requireDtype, typeOf } from './shared/shapes.js';

/**
 * x (float32) → y uint8, y_scale, y_zero_point: per-tensor quantization with the range [min(x, 0),
 * max(x, 0)] measured at run time (opset 11). What dynamic quantization puts before MatMulInteger.
 */
export const dynamicQuantizeLinear = defineOp<Record<string, never>>({
  opType: 'DynamicQuantizeLinear',
  domain: '',
  summary: 'float32 → uint8 with a scale and zero point computed from the tensor itself',
  inputCount: [1, 1],
  outputCount: [3, 3],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    requireDtype(ctx, 0, new Set(['float32']));
    return [typeOf('uint8', input(ctx, 0).type.shape), typeOf('float32', []), typeOf('uint8', [])];
  },
  macs: () => 0,
  mixesImages: () => 'measures its quantization range over the whole batch',
});
