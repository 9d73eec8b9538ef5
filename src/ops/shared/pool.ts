import type { ValueType } from '../../onnx/graph.js';
import { FLOAT_DTYPES, type DType } from '../../onnx/dtype.js';
import type { OpContext } from '../op-def.js';
import { requireDtype, requireMinRank, typeOf } from './shapes.js';
import { resolveWindow, windowOutputShape, type WindowAttrs } from './window.js';

/** X [N, C, D1..Dn] → [N, C, O1..On] for the windowed pools (MaxPool, AveragePool). */
export function inferPoolType<A extends WindowAttrs>(ctx: OpContext<A>, dtypes: ReadonlySet<DType> = FLOAT_DTYPES): ValueType {
  const dtype = requireDtype(ctx, 0, dtypes);
  const x = requireMinRank(ctx, 0, 3);
  const window = resolveWindow(ctx.attrs, x.length - 2);
  return typeOf(dtype, [x[0]!, x[1]!, ...windowOutputShape(ctx, x.slice(2), window, 2)]);
}

/** X [N, C, D1..Dn] → [N, C, 1, .., 1] for the global pools. */
export function inferGlobalPoolType<A>(ctx: OpContext<A>): ValueType {
  const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
  const x = requireMinRank(ctx, 0, 3);
  return typeOf(dtype, [x[0]!, x[1]!, ...x.slice(2).map(() => 1)]);
}
