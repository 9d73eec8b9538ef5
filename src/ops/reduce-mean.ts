import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceMean = reduceOp({
  opType: 'ReduceMean',
  summary: 'mean over axes (keepdims default on); torch exports adaptive_avg_pool2d(x, 1) as this or GlobalAveragePool',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'mean'),
  lower: reduceLowering('mean', 18),
});
