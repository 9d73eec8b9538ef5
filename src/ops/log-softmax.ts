import { defineOp } from './op-def.js';
import { softmax, type SoftmaxAttrs } from './softmax.js';
import { single } from '../engine/lowering.js';

/** Softmax's shapes, axis rules and channel flow; the engine runs it as softmax with the log flag. */
export const logSoftmax = defineOp<SoftmaxAttrs>({
  ...softmax,
  opType: 'LogSoftmax',
  summary: 'log(softmax(x)) along an axis, computed stably',
  lower: (ctx) => single('softmax', { ints: [ctx.attrs.axis, ctx.opset < 13 ? 1 : 0, 1] }),
});
