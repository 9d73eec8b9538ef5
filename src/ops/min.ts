import { variadicOp } from './shared/variadic.js';

export const min = variadicOp('Min', 'min', 'the elementwise minimum of its inputs, numpy broadcasting (torch.minimum)');
