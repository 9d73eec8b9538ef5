import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';
import { broadcastChannels } from '../compress/prune/rules.js';
import { firstInputWhenConstant } from './shared/pass-through.js';

export const sub = binaryArithmeticOp({
  opType: 'Sub',
  summary: 'a - b, elementwise with numpy broadcasting',
  apply: (a, b) => a - b,
  passesThrough: firstInputWhenConstant(0),
  lower: (ctx) => binaryLowering('sub', ctx),
  channels: broadcastChannels('bias'),
});
