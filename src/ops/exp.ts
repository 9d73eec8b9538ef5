import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const exp = unaryFloatOp({
  opType: 'Exp',
  summary: 'e^x, elementwise',
  parseAttrs: () => ({}),
  lower: () => single('exp'),
  channels: sameChannels(),
});
