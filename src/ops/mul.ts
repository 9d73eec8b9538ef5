import { binaryArithmeticOp } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';

export const mul = binaryArithmeticOp({
  opType: 'Mul',
  summary: 'a * b, elementwise with numpy broadcasting',
  apply: (a, b) => a * b,
  lower: (ctx) => binaryLowering('mul', ctx),
});
