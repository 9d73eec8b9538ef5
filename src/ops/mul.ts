import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { broadcastChannels } from '../compress/prune/rules.js';

export const mul = binaryArithmeticOp({
  opType: 'Mul',
  summary: 'a * b, elementwise with numpy broadcasting',
  apply: (a, b) => a * b,
  lower: (ctx) => binaryLowering('mul', ctx),
  quant: quantizedInputsAndOutput(2), // QLinearMul,
  channels: broadcastChannels('other'),
});
