import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceMax = reduceOp({
  opType: 'ReduceMax',
  summary: 'maximum over axes (CBAM-style attention: x.max(dim=1))',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18, 'max'),
  lower: reduceLowering('max', 18),
});
