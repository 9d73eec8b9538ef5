import type { Dim } from '../onnx/graph.js';
import { defineOp } from './op-def.js';
import { broadcastIndex } from './shared/known.js';
import { broadcastShapes, input, isStatic, requireDtype, sameDtype, typeOf } from './shared/shapes.js';

/**
 * condition ? X : Y elementwise, all three broadcast together (numpy). torch.onnx writes it with Equal
 * to pick a target's entries (`expand(-1, C, -1, -1)`), which folds to a constant.
 */
export const where = defineOp<Record<string, never>>({
  opType: 'Where',
  domain: '',
  summary: 'condition ? x : y elementwise, the three broadcast together',
  inputCount: [3, 3],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    requireDtype(ctx, 0, new Set(['bool']));
    const dtype = sameDtype(ctx, [1, 2]);
    const shapes = [0, 1, 2].map((i) => input(ctx, i).type.shape);
    if (shapes.some((s) => !s)) return [typeOf(dtype)];
    return [typeOf(dtype, shapes.reduce<Dim[]>((out, s) => broadcastShapes(out, s!), []))];
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const [cond, x, y] = [0, 1, 2].map((i) => ctx.inputs[i]?.known);
    const shape = outputs[0]?.shape;
    if (!cond || !x || !y || !isStatic(shape)) return [undefined];
    const n = shape.reduce((p, d) => p * d, 1);
    const values: Dim[] = [];
    for (let i = 0; i < n; i++) {
      const c = cond.values[broadcastIndex(i, shape, cond.dims)];
      if (typeof c !== 'number') return [undefined];
      const pick = c !== 0 ? x : y;
      values.push(pick.values[broadcastIndex(i, shape, pick.dims)]!);
    }
    return [{ dims: shape, values }];
  },
});
