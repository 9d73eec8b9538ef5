import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { broadcastChannels } from '../compress/prune/rules.js';
import { otherInputWhenConstant } from './shared/pass-through.js';

export const add = binaryArithmeticOp({
  opType: 'Add',
  summary: 'a + b, elementwise with numpy broadcasting',
  apply: (a, b) => a + b,
  passesThrough: otherInputWhenConstant(0),
  lower: (ctx) => binaryLowering('add', ctx),
  quant: quantizedInputsAndOutput(2), // QLinearAdd,
  channels: broadcastChannels('bias'),
});
