import { defineOp } from './op-def.js';
import { input, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

export const identity = defineOp<Record<string, never>>({
  opType: 'Identity',
  domain: '',
  summary: 'a copy of the input',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    const x = input(ctx, 0);
    return [typeOf(x.type.dtype, x.type.shape)];
  },
  macs: () => 0,
  passesThrough: () => 0,
  foldValues: (ctx) => [ctx.inputs[0]?.known],
  lower: () => single('identity'),
  channels: sameChannels(),
});
