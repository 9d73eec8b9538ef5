import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceLowering, reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';

export const reduceSum = reduceOp({
  opType: 'ReduceSum',
  summary: 'sum over axes (axes an input from opset 13)',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 13,
  channels: reduceChannels(13, 'exact'),
  lower: reduceLowering('sum', 13),
});
