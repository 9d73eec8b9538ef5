import { NUMERIC_DTYPES, unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const abs = unaryFloatOp({
  opType: 'Abs',
  summary: '|x|, elementwise',
  parseAttrs: () => ({}),
  lower: () => single('abs'),
  dtypes: () => NUMERIC_DTYPES,
  channels: sameChannels(),
});
