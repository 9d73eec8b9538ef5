import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { intAttr, normalizeAxis } from './attrs.js';
import { defineOp } from './op-def.js';
import { input, requireDtype, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';

export interface SoftmaxAttrs {
  /**
   * As written. Before opset 13 the input is flattened to 2-D at `axis` (default 1); from 13 softmax
   * runs along `axis` alone (default -1). The shape is the same either way.
   */
  axis: number;
}

export const softmax = defineOp<SoftmaxAttrs>({
  opType: 'Softmax',
  domain: '',
  summary: 'exp(x) / sum(exp(x)) along an axis',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs: (node, opset) => ({ axis: intAttr(node, 'axis', opset >= 13 ? -1 : 1) }),
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
    const shape = input(ctx, 0).type.shape;
    if (shape && shape.length > 0) normalizeAxis(ctx.attrs.axis, shape.length);
    return [typeOf(dtype, shape)];
  },
  macs: () => 0,
  lower: (ctx) => single('softmax', { ints: [ctx.attrs.axis, ctx.opset < 13 ? 1 : 0, 0] }),
});
