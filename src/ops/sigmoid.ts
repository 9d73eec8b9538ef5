import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { sameChannels } from '../compress/prune/rules.js';

export const sigmoid = unaryFloatOp({
  opType: 'Sigmoid',
  summary: '1 / (1 + exp(-x)), elementwise',
  parseAttrs: () => ({}),
  lower: () => single('sigmoid'),
  quant: quantizedInputsAndOutput(), // QLinearSigmoid,
  channels: sameChannels(),
});
