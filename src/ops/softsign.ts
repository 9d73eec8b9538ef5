import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const softsign = unaryFloatOp({
  opType: 'Softsign',
  summary: 'x / (1 + |x|), elementwise',
  parseAttrs: () => ({}),
  lower: () => single('softsign'),
  channels: sameChannels(),
});
