import type { DType } from '../onnx/dtype.js';
import { defineOp, OpError } from './op-def.js';
import { foldBinary, NUMERIC_DTYPES } from './shared/elementwise.js';
import { broadcastShapes, input, requireDtype, sameDtype, typeOf } from './shared/shapes.js';

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
  // Known values are integers held as doubles: beyond 2^53 two different ones may compare equal.
  foldValues: (ctx, outputs) => [foldBinary(ctx, outputs, (x, y) => (Number.isSafeInteger(x) && Number.isSafeInteger(y) ? Number(x === y) : undefined))],
});
