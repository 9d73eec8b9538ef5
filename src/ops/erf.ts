import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

/** torch.onnx writes exact GELU as x · 0.5 · (1 + Erf(x / √2)): ConvNeXt, ViT-style heads. */
export const erf = unaryFloatOp({
  opType: 'Erf',
  summary: 'the Gauss error function, elementwise (torch exports GELU with it)',
  parseAttrs: () => ({}),
  lower: () => single('erf'),
  channels: sameChannels(),
});
