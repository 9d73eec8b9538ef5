import { variadicOp } from './shared/variadic.js';

export const sum = variadicOp('Sum', 'sum', 'the elementwise sum of its inputs, numpy broadcasting');
