import { integerRange } from '../onnx/dtype.js';
import { OpError } from '../ops/op-def.js';
import type { QuantizeLinearAttrs } from '../ops/quantize-linear.js';
import type { LowerContext, Lowering } from './lowering.js';

/**
 * Quantization-aware training with learnable scales (LSQ, Esser et al. 2020): a QuantizeLinear →
 * DequantizeLinear pair lowers to the `fake_quant_lsq` kernel (native/src/qat.h) and its scale
 * initializer becomes a trained parameter. The compiler uses this lowering instead of the op's own
 * (`fake_quant`, fixed scales) when a plan is compiled with `learnableScales`.
 */

export function lowerLearnableQuant(ctx: LowerContext<QuantizeLinearAttrs>): Lowering {
  const [x, scale, zero] = ctx.node.inputs;
  const readers = ctx.consumers(ctx.node.outputs[0]!);
  const paired = readers.length > 0 && readers.every((n) => n.opType === 'DequantizeLinear' && n.inputs[1] === scale && (n.inputs[2] ?? '') === (zero ?? ''));
  if (!paired) throw new OpError('training runs QuantizeLinear only when every reader is a DequantizeLinear with the same scale and zero point');
  const scaleFacts = ctx.inputs[1];
  if (!scaleFacts?.constant) throw new OpError(`learnable scale '${scale}' must be an initializer`);
  if (!zero || !ctx.inputs[2]?.constant) throw new OpError('learnable scales need a constant zero point input (slim quantize writes one)');
  const dtype = ctx.inputs[2].type.dtype;
  const typeRange = dtype === 'int8' || dtype === 'uint8' ? integerRange(dtype) : undefined;
  if (!typeRange) throw new OpError(`fake quantization supports int8 and uint8, not ${dtype}`);
  const range = ctx.quantRange ?? typeRange;
  const perChannel = scaleFacts.constant.dims.length === 1 && scaleFacts.constant.data.length > 1;
  return {
    steps: [{ kernel: 'fake_quant_lsq', inputs: [x!, scale!, zero], ints: [perChannel ? 1 : 0, ctx.attrs.axis, range[0], range[1]], floats: [gradFactor(ctx, perChannel, range[1])] }],
    params: [scale!],
  };
}

/**
 * LSQ's gradient scale g = 1 / sqrt(N · Qp): N is the number of values one scale quantizes (per
 * sample for activations, per channel for weights), Qp the largest integer level. It keeps the
 * scale's step size in proportion to the values it quantizes.
 */
function gradFactor(ctx: LowerContext<QuantizeLinearAttrs>, perChannel: boolean, qmax: number): number {
  const x = ctx.inputs[0]!;
  const shape = x.constant?.dims ?? x.type.shape ?? [];
  // A weight's every value counts; an activation's batch dimension does not.
  const dims = x.constant ? shape : shape.slice(1);
  let n = 1;
  dims.forEach((d, i) => {
    const axis = ctx.attrs.axis < 0 ? ctx.attrs.axis + shape.length : ctx.attrs.axis;
    if (typeof d === 'number' && !(perChannel && i + (x.constant ? 0 : 1) === axis)) n *= d;
  });
  return 1 / Math.sqrt(Math.max(1, n) * qmax);
}
