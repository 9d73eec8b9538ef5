import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceSumSquare = reduceOp({
  opType: 'ReduceSumSquare',
  summary: 'sum of x² over axes',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'exact'),
  lower: reduceLowering('sum_square', 18),
});
