import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const log = unaryFloatOp({
  opType: 'Log',
  summary: 'natural logarithm, elementwise',
  parseAttrs: () => ({}),
  lower: () => single('log'),
  channels: sameChannels(),
});
