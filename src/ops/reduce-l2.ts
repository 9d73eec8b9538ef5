import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceL2 = reduceOp({
  opType: 'ReduceL2',
  summary: 'square root of the sum of x² over axes (F.normalize exports it)',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'exact'),
  lower: reduceLowering('l2', 18),
});
