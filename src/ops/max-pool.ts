import { FLOAT_DTYPES, type DType } from '../onnx/dtype.js';
import { intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { inferPoolType } from './shared/pool.js';
import { typeOf, shapeOf } from './shared/shapes.js';
import { parseWindowAttrs, type WindowAttrs, resolveWindow } from './shared/window.js';
import { explicitPads, single, windowInts } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { poolChannels } from '../compress/prune/rules.js';

export interface MaxPoolAttrs extends WindowAttrs {
  /** 0: Indices are row-major, 1: column-major. */
  storageOrder: 0 | 1;
}

const POOL_DTYPES_12: ReadonlySet<DType> = new Set([...FLOAT_DTYPES, 'int8', 'uint8']);

export const maxPool = defineOp<MaxPoolAttrs>({
  opType: 'MaxPool',
  domain: '',
  summary: 'max over sliding windows (ceil_mode, dilations, optional int64 Indices output)',
  inputCount: [1, 1],
  outputCount: [1, 2],
  parseAttrs(node, opset) {
    const storageOrder = intAttr(node, 'storage_order', 0);
    if (storageOrder !== 0 && storageOrder !== 1) throw new OpError(`storage_order must be 0 or 1, got ${storageOrder}`);
    // ceil_mode and dilations arrived in opset 10.
    const window = parseWindowAttrs(node, { ceilMode: opset >= 10 });
    if (!window.kernelShape) throw new OpError('MaxPool requires attribute kernel_shape');
    return { ...window, storageOrder };
  },
  inferTypes(ctx) {
    // Opset 12 added int8/uint8 (pooling quantized tensors directly).
    const y = inferPoolType(ctx, ctx.opset >= 12 ? POOL_DTYPES_12 : FLOAT_DTYPES);
    return ctx.node.outputs.length > 1 ? [y, typeOf('int64', y.shape)] : [y];
  },
  macs: () => 0,
  lower(ctx) {
    if (ctx.node.outputs[1]) throw new OpError('the Indices output is not supported for training');
    const window = explicitPads(ctx, resolveWindow(ctx.attrs, shapeOf(ctx, 0).length - 2));
    return single('max_pool', {
      outputs: [ctx.node.outputs[0]!],
      ints: [...windowInts(window, { kernel: true, dilations: true }), Number(window.ceilMode)],
    });
  },
  // int8 MaxPool (opset 12+) when input and output share a scale; not with the Indices output.
  quant: { mark: (ctx) => (ctx.node.outputs[1] ? undefined : passThrough<MaxPoolAttrs>().mark(ctx)) },
  channels: poolChannels(),
});
