import { floatAttr } from './attrs.js';
import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export interface HardSigmoidAttrs {
  alpha: number;
  beta: number;
}

export const hardSigmoid = unaryFloatOp<HardSigmoidAttrs>({
  opType: 'HardSigmoid',
  summary: 'max(0, min(1, alpha * x + beta)), elementwise (PyTorch exports alpha = 1/6)',
  parseAttrs: (node) => ({ alpha: floatAttr(node, 'alpha', 0.2), beta: floatAttr(node, 'beta', 0.5) }),
  lower: (ctx) => single('hard_sigmoid', { floats: [ctx.attrs.alpha, ctx.attrs.beta] }),
  channels: sameChannels(),
});
