import type { DType } from '../onnx/dtype.js';
import { defineOp, OpError } from './op-def.js';
import type { Dim } from '../onnx/graph.js';
import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { broadcastIndex } from './shared/known.js';
import { broadcastShapes, input, isStatic, requireDtype, sameDtype, typeOf } from './shared/shapes.js';

/** Opset 7 compares bools and integers; 11 adds floats; 19 strings. */
function comparable(opset: number): ReadonlySet<DType> {
  if (opset >= 19) return new Set([...NUMERIC_DTYPES, 'bool', 'string']);
  if (opset >= 11) return new Set([...NUMERIC_DTYPES, 'bool']);
  return new Set<DType>(['bool', 'int32', 'int64']);
}

/**
 * A == B elementwise (numpy broadcasting), a bool tensor. torch.onnx writes it inside shape
 * computations — `expand(-1, C, -1, -1)` picks its target's entries with Equal → Where — which fold
 * to constants, so the op is known here for inference and folding; the engine does not train it.
 */
export const equal = defineOp<Record<string, never>>({
  opType: 'Equal',
  domain: '',
  summary: 'a == b elementwise with numpy broadcasting (a bool tensor)',
  inputCount: [2, 2],
  outputCount: [1, 1],
  parseAttrs(_node, opset) {
    // Opset 1's broadcast/axis attributes align B differently from numpy; torch never wrote them.
    if (opset < 7) throw new OpError(`Equal before opset 7 is not supported (this model's opset is ${opset}); re-export with opset 7 or later`);
    return {};
  },
  inferTypes(ctx) {
    requireDtype(ctx, 0, comparable(ctx.opset));
    sameDtype(ctx);
    const a = input(ctx, 0).type.shape;
    const b = input(ctx, 1).type.shape;
    return [typeOf('bool', a && b ? broadcastShapes(a, b) : undefined)];
  },
  macs: () => 0,
  foldValues(ctx, outputs) {
    const [a, b] = [ctx.inputs[0]?.known, ctx.inputs[1]?.known];
    const shape = outputs[0]?.shape;
    if (!a || !b || !isStatic(shape)) return [undefined];
    const values: Dim[] = [];
    for (let i = 0; i < shape.reduce((p, d) => p * d, 1); i++) {
      const r = equalEntry(a.values[broadcastIndex(i, shape, a.dims)]!, b.values[broadcastIndex(i, shape, b.dims)]!);
      if (r === undefined) return [undefined];
      values.push(r);
    }
    return [{ dims: shape, values }];
  },
});

/**
 * One entry of a known Equal. Known values are integers held as doubles (beyond 2^53 two different ones
 * may compare equal), or symbols, which are dims read by Shape and so never negative: a symbol equals
 * itself and not a negative number — torch's `x.expand(n, -1, -1, -1)` compares its target [n, -1, -1, -1]
 * with −1 to pick the entries to keep, and the batch `n` is such a symbol.
 */
function equalEntry(x: Dim, y: Dim): number | undefined {
  if (typeof x === 'number' && typeof y === 'number') return Number.isSafeInteger(x) && Number.isSafeInteger(y) ? Number(x === y) : undefined;
  if (typeof x === 'string' && typeof y === 'string') return x === y ? 1 : undefined;
  const n = (typeof x === 'number' ? x : y) as number;
  return n < 0 ? 0 : undefined;
}
