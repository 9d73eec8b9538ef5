import { FLOAT_DTYPES } from '../onnx/dtype.js';
import type { Dim } from '../onnx/graph.js';
import { defineOp, OpError } from './op-def.js';
import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { broadcastShapes, input, requireDtype, sameDtype, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { broadcastChannels } from '../compress/prune/rules.js';

/**
 * x if x ≥ 0 else slope · x, with a learned slope that broadcasts to x (torch exports nn.PReLU's
 * per-channel weight as [C, 1, 1]). The slope trains, as in PyTorch.
 */
/** Opsets < 7 read a 1-D slope of C values per channel (axis 1), not numpy-broadcast along the last axis. */
function legacyPerChannel(opset: number, x: readonly Dim[], slope: readonly Dim[]): boolean {
  return opset < 7 && slope.length === 1 && x.length >= 2 && slope[0] === x[1] && x[1] !== 1;
}

export const prelu = defineOp<Record<string, never>>({
  opType: 'PRelu',
  domain: '',
  summary: 'x if x >= 0 else slope * x, with a learned slope broadcast to x',
  inputCount: [2, 2],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    // Opset 16 added integer types.
    requireDtype(ctx, 0, ctx.opset >= 16 ? NUMERIC_DTYPES : FLOAT_DTYPES);
    const dtype = sameDtype(ctx);
    const x = input(ctx, 0).type.shape;
    const slope = input(ctx, 1).type.shape;
    if (!x || !slope) return [typeOf(dtype, x ? [...x] : undefined)];
    if (legacyPerChannel(ctx.opset, x, slope)) return [typeOf(dtype, [...x])];
    // Unidirectional: the slope broadcasts to x, never x to the slope.
    const merged = broadcastShapes(x, slope);
    if (merged.length !== x.length || merged.some((d, i) => typeof d === 'number' && typeof x[i] === 'number' && d !== x[i])) {
      throw new OpError(`slope [${slope.join(', ')}] does not broadcast to the input [${x.join(', ')}]`);
    }
    return [typeOf(dtype, [...x])];
  },
  macs: () => 0,
  lower(ctx) {
    const x = ctx.inputs[0]?.type.shape;
    const slope = ctx.inputs[1]?.type.shape;
    const perChannel = !!x && !!slope && legacyPerChannel(ctx.opset, x, slope);
    // The slope is a per-channel vector however it is written ([C] or [C, 1, 1]): kept out of weight decay,
    // as PyTorch's PReLU documentation advises.
    return single('prelu', { ints: [perChannel ? 1 : 0] }, { params: [ctx.node.inputs[1]!], vectors: [ctx.node.inputs[1]!] });
  },
  channels: broadcastChannels('scale'),
});
