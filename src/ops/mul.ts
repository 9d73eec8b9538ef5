import { binaryArithmeticOp, type BinaryAttrs } from './shared/elementwise.js';
import { binaryLowering } from '../engine/lowering.js';
import { quantizedInputsAndOutput } from '../compress/quantize/pattern.js';
import { broadcastChannels } from '../compress/prune/rules.js';
import type { ChannelContext } from '../compress/prune/channel-rule.js';
import { otherInputWhenConstant } from './shared/pass-through.js';

/**
 * A per-channel constant times a normalized value is that normalization's γ: GroupNorm's affine, which
 * torch.onnx writes as a Mul after InstanceNormalization → Reshape. BN-γ importance reads it there.
 */
function normScale(ctx: ChannelContext<BinaryAttrs>): boolean {
  return ctx.node.inputs.some((v) => {
    const writer = v ? ctx.producer?.(v) : undefined;
    const normalized = writer?.opType === 'Reshape' ? ctx.producer?.(writer.inputs[0]!) : writer;
    return normalized?.opType === 'InstanceNormalization';
  });
}

export const mul = binaryArithmeticOp({
  opType: 'Mul',
  summary: 'a * b, elementwise with numpy broadcasting',
  apply: (a, b) => a * b,
  passesThrough: otherInputWhenConstant(1),
  lower: (ctx) => binaryLowering('mul', ctx),
  quant: quantizedInputsAndOutput(2), // QLinearMul,
  channels: broadcastChannels((ctx) => (normScale(ctx) ? 'scale' : 'other')),
});
