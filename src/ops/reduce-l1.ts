import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceL1 = reduceOp({
  opType: 'ReduceL1',
  summary: 'sum of |x| over axes',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'exact'),
  lower: reduceLowering('l1', 18),
});
