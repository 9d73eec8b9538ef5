import { defineOp } from './op-def.js';
import { inferGlobalPoolType } from './shared/pool.js';
import { single } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { poolChannels } from '../compress/prune/rules.js';

export const globalAveragePool = defineOp<Record<string, never>>({
  opType: 'GlobalAveragePool',
  domain: '',
  summary: 'mean over all spatial positions: [N, C, ...] → [N, C, 1, ...]',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes: (ctx) => [inferGlobalPoolType(ctx)],
  macs: () => 0,
  lower: () => single('global_avg_pool'),
  quant: quantizedInputsAndOutput(), // QLinearGlobalAveragePool,
  channels: poolChannels(),
});
