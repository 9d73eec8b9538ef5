import { FLOAT_DTYPES, onnxDtype } from '../onnx/dtype.js';
import { floatAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, requireDtype, typeOf } from './shared/shapes.js';
import { constantScalar, single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';
import { attributesToInputs, floatScalar } from './shared/upgrade.js';
import { constantAll } from './shared/pass-through.js';

/**
 * `ratio` is the attribute of opsets < 12; from 12 the ratio and training_mode are optional inputs.
 * Inference (what slimkit exports) is the identity either way.
 */
export interface DropoutAttrs {
  ratio?: number;
}

export const dropout = defineOp<DropoutAttrs>({
  opType: 'Dropout',
  domain: '',
  summary: 'identity at inference; random zeroing with scaling when training_mode is true',
  inputCount: [1, 3],
  outputCount: [1, 2],
  parseAttrs(node, opset) {
    if (opset >= 12) return {};
    const ratio = floatAttr(node, 'ratio', 0.5);
    if (ratio < 0 || ratio >= 1) throw new OpError(`ratio must be in [0, 1), got ${ratio}`);
    return { ratio };
  },
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
    if (ctx.opset < 12 && ctx.node.inputs.length > 1) {
      throw new OpError(`Dropout before opset 12 takes no ratio/training_mode inputs (opset ${ctx.opset})`);
    }
    const training = ctx.inputs[2];
    if (training && training.type.dtype !== 'bool') throw new OpError(`training_mode '${training.name}' must be bool, got ${training.type.dtype}`);
    const shape = input(ctx, 0).type.shape;
    const out = [typeOf(dtype, shape)];
    // The mask is bool from opset 10; before that it had the input's type.
    if (ctx.node.outputs.length > 1) out.push(typeOf(ctx.opset >= 10 ? 'bool' : dtype, shape));
    return out;
  },
  macs: () => 0,
  // At inference (training_mode absent or false); the pass keeps a node whose mask is read.
  passesThrough: (ctx) => (!ctx.inputs[2] || constantAll(ctx, 2, 0) ? 0 : undefined),
  lower(ctx) {
    if (ctx.node.outputs[1] && ctx.consumers(ctx.node.outputs[1]).length > 0) {
      throw new OpError('the mask output is not supported for training');
    }
    // Dropout is active whenever the engine trains, whatever training_mode the file says (0 for exports).
    const ratio = ctx.attrs.ratio ?? constantScalar(ctx, 1, 'ratio') ?? 0.5;
    return single('dropout', { inputs: [ctx.node.inputs[0]!], outputs: [ctx.node.outputs[0]!], floats: [ratio] });
  },
  channels: sameChannels(),
  // The ratio still matters: the engine drops with it when the model is trained.
  upgrade(ctx) {
    if (ctx.opset >= 12) return [ctx.node];
    const ratio = ctx.node.attributes['ratio'] ? ctx.constant(`${ctx.node.name}_ratio`, floatScalar('float32', ctx.attrs.ratio!)) : '';
    const node = attributesToInputs(ctx.node, ['ratio'], [ratio]);
    const mask = ctx.node.outputs[1];
    if (ctx.opset >= 10 || !mask) return [node];
    // Before opset 10 the mask had the input's type; from 10 it is bool: cast back for its readers. (At
    // inference ONNX Runtime's old kernels wrote 0s into it, Dropout-13 writes trues: exports never
    // read the mask, and the spec means the latter.)
    const boolMask = ctx.fresh(`${mask}_bool`);
    const to = onnxDtype(input(ctx, 0).type.dtype);
    return [
      { ...node, outputs: [ctx.node.outputs[0]!, boolMask] },
      { name: ctx.fresh(`${ctx.node.name}_mask_cast`), opType: 'Cast', domain: '', inputs: [boolMask], outputs: [mask], attributes: { to: { type: 'int', value: to } } },
    ];
  },
});
