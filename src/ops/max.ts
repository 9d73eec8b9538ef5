import { variadicOp } from './shared/variadic.js';

export const max = variadicOp('Max', 'max', 'the elementwise maximum of its inputs, numpy broadcasting (torch.maximum)');
