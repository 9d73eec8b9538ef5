import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { NUMERIC_DTYPES, unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { foldableActivation } from '../compress/quantize/pattern.js';
import { sameChannels } from '../compress/prune/rules.js';

export const relu = unaryFloatOp({
  opType: 'Relu',
  summary: 'max(x, 0), elementwise',
  parseAttrs: () => ({}),
  lower: () => single('relu'),
  // Opset 14 added signed integer inputs.
  dtypes: (opset) => (opset >= 14 ? NUMERIC_DTYPES : FLOAT_DTYPES),
  // Absorbed by a quantized producer: the uint8 range [0, max] clamps like Relu.
  quant: foldableActivation(),
  channels: sameChannels(),
});
