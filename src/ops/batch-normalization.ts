import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { floatAttr, intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, mergeDims, requireDtype, requireMinRank, requireRank, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { samePorts, vectorParams } from '../compress/prune/rules.js';
import { attributesToInputs } from './shared/upgrade.js';

export interface BatchNormalizationAttrs {
  epsilon: number;
  momentum: number;
  /** Opset 14+: outputs running_mean and running_var as well. Always false before 14. */
  trainingMode: boolean;
}

/**
 * Y = scale * (X - mean) / sqrt(var + epsilon) + B over channel axis 1. Extra outputs (training
 * form at opset 14+, or the mean/var/saved outputs of opsets < 14) are per-channel vectors.
 */
export const batchNormalization = defineOp<BatchNormalizationAttrs>({
  opType: 'BatchNormalization',
  domain: '',
  summary: 'per-channel normalization with stored statistics (inference form); folds into Conv',
  inputCount: [5, 5],
  outputCount: [1, 5],
  parseAttrs(node, opset) {
    if (opset < 9 && intAttr(node, 'spatial', 1) !== 1) {
      throw new OpError('spatial=0 (per-activation statistics, opset < 9) is not supported');
    }
    const epsilon = floatAttr(node, 'epsilon', 1e-5);
    if (!(epsilon >= 0)) throw new OpError(`epsilon must be non-negative, got ${epsilon}`);
    return {
      epsilon,
      momentum: floatAttr(node, 'momentum', 0.9),
      trainingMode: opset >= 14 && intAttr(node, 'training_mode', 0) !== 0,
    };
  },
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
    const x = requireMinRank(ctx, 0, 2);
    let channels = x[1]!;
    for (const i of [1, 2, 3, 4]) {
      requireDtype(ctx, i, FLOAT_DTYPES);
      const v = requireRank(ctx, i, [1]);
      channels = mergeDims(channels, v[0]!, `'${input(ctx, i).name}' length vs the ${x[1]} channels of '${input(ctx, 0).name}'`);
    }
    const outputs = ctx.node.outputs.length;
    if (ctx.opset >= 14 && outputs > (ctx.attrs.trainingMode ? 3 : 1)) {
      throw new OpError(`has ${outputs} outputs, but running_mean/running_var exist only with training_mode=1`);
    }
    // Statistics outputs take mean's type (opset 15 lets it differ from X).
    const stats = typeOf(input(ctx, 3).type.dtype, [channels]);
    return [typeOf(dtype, [...x]), ...new Array(outputs - 1).fill(stats)];
  },
  macs: () => 0,
  lower(ctx) {
    if (ctx.node.outputs.filter(Boolean).length > 1) {
      throw new OpError('the form with statistics outputs is not supported for training (an export in training mode): re-export the model with torch.onnx.export(..., training=torch.onnx.TrainingMode.EVAL) or PRESERVE');
    }
    const [, scale, bias, mean, variance] = ctx.node.inputs;
    // ONNX keeps running·momentum + batch·(1 − momentum); PyTorch's momentum is the batch's weight.
    return single(
      'batch_norm',
      { floats: [ctx.attrs.epsilon, 1 - ctx.attrs.momentum] },
      { params: [scale!, bias!], state: [mean!, variance!] },
    );
  },
  // Pruning: channel i in is channel i out; γ, β, mean and var are sliced with it.
  channels: {
    ports: (ctx) => (ctx.node.outputs.filter(Boolean).length > 1 ? 'has statistics outputs (an export in training mode: re-export with torch.onnx.TrainingMode.EVAL)' : samePorts([0], [0])),
    params: () => vectorParams([{ slot: 1, role: 'scale' }, { slot: 2, role: 'bias' }, { slot: 3, role: 'statistic' }, { slot: 4, role: 'statistic' }]),
  },
  // Opset 9 dropped `spatial` (only spatial = 1, the per-channel form, is read).
  upgrade: (ctx) => (ctx.opset >= 9 ? [ctx.node] : [attributesToInputs(ctx.node, ['spatial'], [])]),
});
