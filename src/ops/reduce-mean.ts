import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { reduceOp } from './shared/reduce.js';
import { reduceChannels } from '../compress/prune/rules.js';
import { constantInts, single } from '../engine/lowering.js';
import { normalizeAxes } from './shared/shapes.js';
import { OpError } from './op-def.js';

export const reduceMean = reduceOp({
  opType: 'ReduceMean',
  summary: 'mean over axes (keepdims default on); torch exports adaptive_avg_pool2d(x, 1) as this or GlobalAveragePool',
  dtypes: NUMERIC_DTYPES,
  axesInputSince: 18,
  channels: reduceChannels(18),
  lower(ctx) {
    const rank = ctx.inputs[0]?.type.shape?.length;
    if (rank === undefined) throw new OpError('ReduceMean needs an input of known rank for training');
    const axes = ctx.opset >= 18 && ctx.inputs[1] ? constantInts(ctx, 1, 'axes') : ctx.attrs.axes ?? [];
    const x = ctx.node.inputs[0]!;
    if (axes.length === 0 && ctx.attrs.noopWithEmptyAxes) return single('identity', { inputs: [x] });
    const reduced = axes.length === 0 ? Array.from({ length: rank }, (_, k) => k) : normalizeAxes(axes, rank);
    return single('reduce_mean', { inputs: [x], ints: [ctx.attrs.keepDims ? 1 : 0, ...reduced] });
  },
});
