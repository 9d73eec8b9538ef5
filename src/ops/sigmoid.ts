import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';

export const sigmoid = unaryFloatOp({
  opType: 'Sigmoid',
  summary: '1 / (1 + exp(-x)), elementwise',
  parseAttrs: () => ({}),
  lower: () => single('sigmoid'),
});
