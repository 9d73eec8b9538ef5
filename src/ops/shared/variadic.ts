import { NUMERIC_DTYPES } from './elementwise.js';
import { defineOp, OpError, type OpDef } from '../op-def.js';
import { broadcastShapes, input, requireDtype, sameDtype, typeOf } from './shapes.js';
import { single } from '../../engine/lowering.js';
import { broadcastChannels } from '../../compress/prune/rules.js';

/** The functions of the engine's `variadic` kernel, by code (native/src/kernels.cc). */
export const VARIADIC_FUNCTIONS = ['max', 'min', 'sum', 'mean'] as const;

/**
 * Max, Min, Sum, Mean: one or more inputs of one type, combined elementwise with numpy broadcasting
 * (opset 8+; before that the inputs had to have equal shapes, which broadcasting accepts too).
 */
export function variadicOp(opType: string, fn: (typeof VARIADIC_FUNCTIONS)[number], summary: string): OpDef<Record<string, never>> {
  return defineOp<Record<string, never>>({
    opType,
    domain: '',
    summary,
    inputCount: [1, Infinity],
    outputCount: [1, 1],
    parseAttrs: () => ({}),
    inferTypes(ctx) {
      requireDtype(ctx, 0, NUMERIC_DTYPES);
      if (ctx.inputs.some((f) => f === undefined)) throw new OpError(`${opType} inputs cannot be omitted`);
      const dtype = sameDtype(ctx);
      const shapes = ctx.inputs.map((_, i) => input(ctx, i).type.shape);
      if (shapes.some((s) => !s)) return [typeOf(dtype)];
      return [typeOf(dtype, shapes.reduce((a, b) => broadcastShapes(a!, b!))!)];
    },
    macs: () => 0,
    lower: () => single('variadic', { ints: [VARIADIC_FUNCTIONS.indexOf(fn)] }),
    channels: broadcastChannels('other'),
  });
}
