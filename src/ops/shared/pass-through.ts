import { toNumbers } from '../../onnx/tensor.js';
import type { OpContext } from '../op-def.js';

/** Whether input `index` is a constant (initializer or Constant output) whose every element is `value`. */
export function constantAll<A>(ctx: OpContext<A>, index: number, value: number): boolean {
  const t = ctx.inputs[index]?.constant;
  return t !== undefined && toNumbers(t).every((v) => v === value);
}

/**
 * `OpDef.passesThrough` for a commutative binary op with an identity element (1 for Mul, 0 for Add):
 * the other input when one of them is a constant made of that element only.
 */
export function otherInputWhenConstant<A>(identity: number): (ctx: OpContext<A>) => number | undefined {
  return (ctx) => (constantAll(ctx, 1, identity) ? 0 : constantAll(ctx, 0, identity) ? 1 : undefined);
}

/** `OpDef.passesThrough` for a non-commutative one (Sub of 0, Div by 1): input 0 when input 1 is that element. */
export function firstInputWhenConstant<A>(identity: number): (ctx: OpContext<A>) => number | undefined {
  return (ctx) => (constantAll(ctx, 1, identity) ? 0 : undefined);
}
