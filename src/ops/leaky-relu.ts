import { floatAttr } from './attrs.js';
import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { sameChannels } from '../compress/prune/rules.js';

export interface LeakyReluAttrs {
  alpha: number;
}

export const leakyRelu = unaryFloatOp<LeakyReluAttrs>({
  opType: 'LeakyRelu',
  summary: 'x if x >= 0 else alpha * x, elementwise',
  parseAttrs: (node) => ({ alpha: floatAttr(node, 'alpha', 0.01) }),
  lower: (ctx) => single('leaky_relu', { floats: [ctx.attrs.alpha] }),
  quant: quantizedInputsAndOutput(), // QLinearLeakyRelu,
  channels: sameChannels(),
});
