import { unaryFloatOp } from './shared/elementwise.js';

export const sigmoid = unaryFloatOp({
  opType: 'Sigmoid',
  summary: '1 / (1 + exp(-x)), elementwise',
  parseAttrs: () => ({}),
});
