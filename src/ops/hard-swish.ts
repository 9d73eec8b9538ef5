import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const hardSwish = unaryFloatOp({
  opType: 'HardSwish',
  summary: 'x * max(0, min(1, x / 6 + 1/2)), elementwise (opset 14)',
  parseAttrs: () => ({}),
  lower: () => single('hard_swish'),
  channels: sameChannels(),
});
