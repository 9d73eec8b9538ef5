import { unaryFloatOp } from './shared/elementwise.js';

export const relu = unaryFloatOp({
  opType: 'Relu',
  summary: 'max(x, 0), elementwise',
  parseAttrs: () => ({}),
});
