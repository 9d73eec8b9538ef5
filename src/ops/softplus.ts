import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const softplus = unaryFloatOp({
  opType: 'Softplus',
  summary: 'ln(exp(x) + 1), elementwise',
  parseAttrs: () => ({}),
  lower: () => single('softplus'),
  channels: sameChannels(),
});
