import { binaryArithmeticOp } from './shared/elementwise.js';

export const mul = binaryArithmeticOp({
  opType: 'Mul',
  summary: 'a * b, elementwise with numpy broadcasting',
  apply: (a, b) => a * b,
});
