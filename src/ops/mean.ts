import { variadicOp } from './shared/variadic.js';

export const mean = variadicOp('Mean', 'mean', 'the elementwise mean of its inputs, numpy broadcasting');
