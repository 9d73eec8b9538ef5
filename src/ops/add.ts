import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';

export const add = binaryArithmeticOp({
  opType: 'Add',
  summary: 'a + b, elementwise with numpy broadcasting',
  apply: (a, b) => a + b,
  lower: (ctx) => binaryLowering('add', ctx),
});
