import { floatAttr } from './attrs.js';
import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export interface EluAttrs {
  alpha: number;
}

export const elu = unaryFloatOp<EluAttrs>({
  opType: 'Elu',
  summary: 'x if x > 0 else alpha · (exp(x) − 1), elementwise',
  parseAttrs: (node) => ({ alpha: floatAttr(node, 'alpha', 1.0) }),
  lower: (ctx) => single('elu', { floats: [ctx.attrs.alpha] }),
  channels: sameChannels(),
});
