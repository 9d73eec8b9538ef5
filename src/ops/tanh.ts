import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const tanh = unaryFloatOp({
  opType: 'Tanh',
  summary: 'hyperbolic tangent, elementwise (Mish = x · tanh(softplus(x)) exports with it)',
  parseAttrs: () => ({}),
  lower: () => single('tanh'),
  channels: sameChannels(),
});
