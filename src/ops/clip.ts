import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { floatAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { countElements, input, requireDtype, typeOf } from './shared/shapes.js';
import { constantScalar, single } from '../engine/lowering.js';
import { foldableActivation } from '../compress/quantize/pattern.js';
import { sameChannels } from '../compress/prune/rules.js';
import { attributesToInputs, floatScalar } from './shared/upgrade.js';

/** Bounds given as attributes (opset < 11). From opset 11 they are optional inputs 1 (min) and 2 (max). */
export interface ClipAttrs {
  min?: number;
  max?: number;
}

const FLT_MAX = 3.4028234663852886e38;

export const clip = defineOp<ClipAttrs>({
  opType: 'Clip',
  domain: '',
  summary: 'min(max(x, min), max), elementwise (ReLU6 is Clip(0, 6))',
  inputCount: [1, 3],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    if (opset >= 11) return {};
    return { min: floatAttr(node, 'min', -FLT_MAX), max: floatAttr(node, 'max', FLT_MAX) };
  },
  inferTypes(ctx) {
    // Opset 12 added integer inputs.
    const dtype = requireDtype(ctx, 0, ctx.opset >= 12 ? NUMERIC_DTYPES : FLOAT_DTYPES);
    if (ctx.opset < 11 && ctx.node.inputs.length > 1) {
      throw new OpError(`Clip before opset 11 takes min/max as attributes, not inputs (opset ${ctx.opset})`);
    }
    for (const i of [1, 2]) {
      const bound = ctx.inputs[i];
      if (!bound) continue;
      if (bound.type.dtype !== dtype) {
        throw new OpError(`bound '${bound.name}' has type ${bound.type.dtype}, but x is ${dtype}`);
      }
      // ORT accepts a scalar or a one-element vector.
      const shape = bound.type.shape;
      if (shape && (shape.length > 1 || countElements(shape) !== 1 || shape.some((d) => typeof d === 'string'))) {
        throw new OpError(`bound '${bound.name}' must be a scalar, got shape [${shape.join(', ')}]`);
      }
    }
    const x = input(ctx, 0);
    return [typeOf(dtype, x.type.shape)];
  },
  macs: () => 0,
  lower(ctx) {
    const min = ctx.opset >= 11 ? constantScalar(ctx, 1, 'min') : ctx.attrs.min;
    const max = ctx.opset >= 11 ? constantScalar(ctx, 2, 'max') : ctx.attrs.max;
    return single('clip', { inputs: [ctx.node.inputs[0]!], floats: [min ?? -Infinity, max ?? Infinity] });
  },
  // Absorbed by a quantized producer when the bounds hold 0 (ReLU6): the calibrated range [0, ≤ max]
  // then clamps like the Clip. Bounds that exclude 0 cannot be expressed by a range that must hold 0.
  quant: foldableActivation((ctx) => {
    const bound = (slot: number, fallback: number | undefined): number | undefined => {
      if (ctx.opset < 11) return fallback;
      const facts = ctx.inputs[slot];
      if (!facts) return undefined;
      const v = facts.constant?.data;
      return v && v.length === 1 && typeof v[0] === 'number' ? v[0] : NaN;
    };
    const min = bound(1, ctx.attrs.min) ?? -Infinity;
    const max = bound(2, ctx.attrs.max) ?? Infinity;
    return min <= 0 && max >= 0;
  }),
  channels: sameChannels(),
  upgrade(ctx) {
    if (ctx.opset >= 11) return [ctx.node];
    const dtype = input(ctx, 0).type.dtype;
    const bound = (name: 'min' | 'max'): string => (ctx.node.attributes[name] ? ctx.constant(`${ctx.node.name}_${name}`, floatScalar(dtype, ctx.attrs[name]!)) : '');
    return [attributesToInputs(ctx.node, ['min', 'max'], [bound('min'), bound('max')])];
  },
});
