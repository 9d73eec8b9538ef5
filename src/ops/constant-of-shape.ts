import type { Dim } from '../onnx/graph.js';
import { float32, toNumbers, type Tensor } from '../onnx/tensor.js';
import { tensorAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, isStatic, requireRank, typeOf, unknownDim } from './shared/shapes.js';

export interface ConstantOfShapeAttrs {
  /** One element; its type is the output's type (default float32 0). */
  value: Tensor;
}

export const constantOfShape = defineOp<ConstantOfShapeAttrs>({
  opType: 'ConstantOfShape',
  domain: '',
  summary: 'a tensor of the given shape filled with one value',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs(node) {
    const value = tensorAttr(node, 'value') ?? float32([1], [0]);
    if (value.data.length !== 1) throw new OpError(`value must hold one element, got ${value.data.length}`);
    return { value };
  },
  inferTypes(ctx) {
    const shapeInput = input(ctx, 0);
    if (shapeInput.type.dtype !== 'int64') throw new OpError(`shape '${shapeInput.name}' must be int64, got ${shapeInput.type.dtype}`);
    const [length] = requireRank(ctx, 0, [1]);
    const dtype = ctx.attrs.value.dtype;
    const known = shapeInput.known?.values;
    if (known) {
      if (known.some((d) => typeof d === 'number' && d < 0)) throw new OpError(`shape [${known.join(', ')}] has a negative dim`);
      return [typeOf(dtype, [...known])];
    }
    if (typeof length !== 'number') return [typeOf(dtype)];
    return [typeOf(dtype, Array.from({ length }, (_, i): Dim => unknownDim(ctx, 0, i)))];
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const { value } = ctx.attrs;
    const shape = outputs[0]?.shape;
    if ((value.dtype !== 'int64' && value.dtype !== 'int32') || !isStatic(shape)) return [undefined];
    const n = shape.reduce((p, d) => p * d, 1);
    if (n > 4096) return [undefined];
    return [{ dims: shape, values: new Array<number>(n).fill(toNumbers(value)[0]!) }];
  },
});
