import { binaryArithmeticOp } from './shared/elementwise.js';

export const sub = binaryArithmeticOp({
  opType: 'Sub',
  summary: 'a - b, elementwise with numpy broadcasting',
  apply: (a, b) => a - b,
});
