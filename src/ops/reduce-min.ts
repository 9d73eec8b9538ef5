import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceMin = reduceOp({
  opType: 'ReduceMin',
  summary: 'minimum over axes',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'stop'),
  lower: reduceLowering('min', 18),
});
