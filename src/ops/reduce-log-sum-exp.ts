import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceLogSumExp = reduceOp({
  opType: 'ReduceLogSumExp',
  summary: 'log of the sum of exp(x) over axes, computed stably',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'stop'),
  lower: reduceLowering('log_sum_exp', 18),
});
