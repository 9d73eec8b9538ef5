import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';
import { broadcastChannels } from '../compress/prune/rules.js';
import { firstInputWhenConstant } from './shared/pass-through.js';

export const div = binaryArithmeticOp({
  opType: 'Div',
  summary: 'a / b, elementwise with numpy broadcasting; integer division truncates toward zero',
  // ORT divides integers as C++ does: truncation toward zero, and no result for a zero divisor.
  apply: (a, b, integer) => (integer ? (b === 0 ? undefined : Math.trunc(a / b)) : a / b),
  passesThrough: firstInputWhenConstant(1),
  lower: (ctx) => binaryLowering('div', ctx),
  channels: broadcastChannels('other'),
});
