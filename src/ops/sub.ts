import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';
import { broadcastChannels } from '../compress/prune/rules.js';

export const sub = binaryArithmeticOp({
  opType: 'Sub',
  summary: 'a - b, elementwise with numpy broadcasting',
  apply: (a, b) => a - b,
  lower: (ctx) => binaryLowering('sub', ctx),
  channels: broadcastChannels('bias'),
});
