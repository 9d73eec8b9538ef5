import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { intAttr, normalizeAxis } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, requireDtype, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { samePorts } from '../compress/prune/rules.js';

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
  // Pruning: channels pass through a softmax over a spatial axis; one over the channels (or, before
  // opset 13, over everything from axis 1 on) would change what the rest are normalized by.
  channels: {
    ports(ctx) {
      const rank = ctx.inputs[0]?.type.shape?.length;
      if (rank === undefined) return 'its input rank is unknown';
      const axis = normalizeAxis(ctx.attrs.axis, rank);
      return axis === 1 || (ctx.opset < 13 && axis <= 1) ? 'normalizes across the channels' : samePorts([0], [0]);
    },
  },
  // Before opset 13 the op normalized over axes [axis, rank) together. On the last axis that is the
  // same as from 13; otherwise those axes are flattened into one, normalized, and the shape restored.
  upgrade(ctx) {
    if (ctx.opset >= 13) return [ctx.node];
    const shape = input(ctx, 0).type.shape;
    if (!shape) throw new OpError('cannot be rewritten for opset 13: its input rank is unknown');
    const axis = normalizeAxis(ctx.attrs.axis, shape.length);
    const lastAxis = { ...ctx.node, attributes: { ...ctx.node.attributes, axis: { type: 'int' as const, value: -1 } } };
    if (axis === shape.length - 1) return [lastAxis];
    const [x, y] = [ctx.node.inputs[0]!, ctx.node.outputs[0]!];
    const [flat, normalized, shapeOfX] = [ctx.fresh(`${y}_2d`), ctx.fresh(`${y}_2d_out`), ctx.fresh(`${x}_shape`)];
    return [
      { name: ctx.fresh(`${ctx.node.name}_flatten`), opType: 'Flatten', domain: '', inputs: [x], outputs: [flat], attributes: { axis: { type: 'int', value: axis } } },
      { ...lastAxis, inputs: [flat], outputs: [normalized] },
      { name: ctx.fresh(`${ctx.node.name}_shape`), opType: 'Shape', domain: '', inputs: [x], outputs: [shapeOfX], attributes: {} },
      { name: ctx.fresh(`${ctx.node.name}_restore`), opType: 'Reshape', domain: '', inputs: [normalized, shapeOfX], outputs: [y], attributes: {} },
    ];
  },
});
