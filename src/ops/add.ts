import { binaryArithmeticOp } from './shared/elementwise.js';

export const add = binaryArithmeticOp({
  opType: 'Add',
  summary: 'a + b, elementwise with numpy broadcasting',
  apply: (a, b) => a + b,
});
