import type { Dim, ValueType } from '../../onnx/graph.js';
import type { DType } from '../../onnx/dtype.js';
import { OpError, type InputFacts, type OpContext } from '../op-def.js';

/** The input at `index`, which the op requires to be present. */
export function input<A>(ctx: OpContext<A>, index: number): InputFacts {
  const facts = ctx.inputs[index];
  if (!facts) throw new OpError(`${ctx.node.opType} requires input ${index}, which is missing`);
  return facts;
}

/** The shape of a required input; OpError when its rank is unknown. */
export function shapeOf<A>(ctx: OpContext<A>, index: number): Dim[] {
  const facts = input(ctx, index);
  if (!facts.type.shape) throw new OpError(`the shape of input '${facts.name}' is unknown`);
  return facts.type.shape;
}

export function requireRank<A>(ctx: OpContext<A>, index: number, ranks: readonly number[]): Dim[] {
  const shape = shapeOf(ctx, index);
  if (!ranks.includes(shape.length)) {
    throw new OpError(
      `input '${input(ctx, index).name}' has rank ${shape.length} ([${shape.join(', ')}]), expected rank ${ranks.join(' or ')}`,
    );
  }
  return shape;
}

export function requireDtype<A>(ctx: OpContext<A>, index: number, allowed: ReadonlySet<DType>): DType {
  const facts = input(ctx, index);
  if (!allowed.has(facts.type.dtype)) {
    throw new OpError(`input '${facts.name}' has type ${facts.type.dtype}; ${ctx.node.opType} takes ${[...allowed].join(', ')}`);
  }
  return facts.type.dtype;
}

/** All inputs present share one element type; returns it. */
export function sameDtype<A>(ctx: OpContext<A>): DType {
  const present = ctx.inputs.filter((f): f is InputFacts => f !== undefined);
  const first = present[0];
  if (!first) throw new OpError(`${ctx.node.opType} has no inputs`);
  for (const f of present) {
    if (f.type.dtype !== first.type.dtype) {
      throw new OpError(`inputs '${first.name}' (${first.type.dtype}) and '${f.name}' (${f.type.dtype}) must have the same type`);
    }
  }
  return first.type.dtype;
}

/** Numpy-style multidirectional broadcasting. Symbols broadcast against 1 and against themselves. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1 || da === db) out.push(da);
    else if (typeof da === 'string' || typeof db === 'string') out.push(typeof da === 'number' ? da : db);
    else throw new OpError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
  }
  return out;
}

/** Product of dims, counting a symbolic dim as 1 (so MACs are per sample when the batch is free). */
export function countElements(shape: readonly Dim[] | undefined): number {
  if (!shape) return 0;
  let n = 1;
  for (const d of shape) if (typeof d === 'number') n *= d;
  return n;
}

export function isStatic(shape: readonly Dim[] | undefined): shape is number[] {
  return shape !== undefined && shape.every((d) => typeof d === 'number');
}

export function typeOf(dtype: DType, shape?: Dim[]): ValueType {
  return shape ? { dtype, shape } : { dtype };
}

/** Integer contents of a constant input (axes, pads, shapes), or undefined when not static. */
export function knownInts<A>(ctx: OpContext<A>, index: number): number[] | undefined {
  const known = ctx.inputs[index]?.known;
  if (!known || known.values.some((v) => typeof v !== 'number')) return undefined;
  return known.values as number[];
}
