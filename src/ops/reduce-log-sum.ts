import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceLogSum = reduceOp({
  opType: 'ReduceLogSum',
  summary: 'log of the sum over axes',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'exact'),
  lower: reduceLowering('log_sum', 18),
});
