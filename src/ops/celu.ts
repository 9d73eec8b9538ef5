import { floatAttr } from './attrs.js';
import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export interface CeluAttrs {
  alpha: number;
}

export const celu = unaryFloatOp<CeluAttrs>({
  opType: 'Celu',
  summary: 'max(0, x) + min(0, alpha · (exp(x / alpha) − 1)), elementwise',
  parseAttrs: (node) => ({ alpha: floatAttr(node, 'alpha', 1.0) }),
  lower: (ctx) => single('celu', { floats: [ctx.attrs.alpha] }),
  channels: sameChannels(),
});
