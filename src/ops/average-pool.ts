import { intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { inferPoolType } from './shared/pool.js';
import { parseWindowAttrs, type WindowAttrs, resolveWindow } from './shared/window.js';
import { explicitPads, single, windowInts } from '../engine/lowering.js';
import { shapeOf } from './shared/shapes.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { poolChannels } from '../compress/prune/rules.js';

export interface AveragePoolAttrs extends WindowAttrs {
  /** Whether padded cells count in the divisor (PyTorch's count_include_pad; ONNX default off). */
  countIncludePad: boolean;
}

export const averagePool = defineOp<AveragePoolAttrs>({
  opType: 'AveragePool',
  domain: '',
  summary: 'mean over sliding windows (count_include_pad, ceil_mode)',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const window = parseWindowAttrs(node, { ceilMode: opset >= 10 });
    if (!window.kernelShape) throw new OpError('AveragePool requires attribute kernel_shape');
    // Dilations arrived in opset 19; before that the attribute does not exist.
    if (opset < 19 && window.dilations?.some((d) => d !== 1)) {
      throw new OpError(`AveragePool dilations need opset 19 or later (this model imports opset ${opset})`);
    }
    return { ...window, countIncludePad: intAttr(node, 'count_include_pad', 0) !== 0 };
  },
  inferTypes: (ctx) => [inferPoolType(ctx)],
  macs: () => 0,
  lower(ctx) {
    const window = explicitPads(ctx, resolveWindow(ctx.attrs, shapeOf(ctx, 0).length - 2));
    if (window.dilations.some((d) => d !== 1)) throw new OpError('dilated average pooling is not supported for training');
    return single('avg_pool', {
      ints: [...windowInts(window, { kernel: true, dilations: false }), Number(window.ceilMode), Number(ctx.attrs.countIncludePad)],
    });
  },
  quant: quantizedInputsAndOutput(), // QLinearAveragePool,
  channels: poolChannels(),
});
