import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const sqrt = unaryFloatOp({
  opType: 'Sqrt',
  summary: 'square root, elementwise',
  parseAttrs: () => ({}),
  lower: () => single('sqrt'),
  channels: sameChannels(),
});
