import { floatAttr } from './attrs.js';
import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export interface SeluAttrs {
  alpha: number;
  gamma: number;
}

export const selu = unaryFloatOp<SeluAttrs>({
  opType: 'Selu',
  summary: 'gamma · (x if x > 0 else alpha · (exp(x) − 1)), elementwise',
  parseAttrs: (node) => ({ alpha: floatAttr(node, 'alpha', 1.6732631921768188), gamma: floatAttr(node, 'gamma', 1.0507010221481323) }),
  lower: (ctx) => single('selu', { floats: [ctx.attrs.alpha, ctx.attrs.gamma] }),
  channels: sameChannels(),
});
