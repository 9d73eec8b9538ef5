import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const reciprocal = unaryFloatOp({
  opType: 'Reciprocal',
  summary: '1 / x, elementwise',
  parseAttrs: () => ({}),
  lower: () => single('reciprocal'),
  channels: sameChannels(),
});
