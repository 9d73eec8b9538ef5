import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceProd = reduceOp({
  opType: 'ReduceProd',
  summary: 'product over axes',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'stop'),
  lower: reduceLowering('prod', 18),
});
