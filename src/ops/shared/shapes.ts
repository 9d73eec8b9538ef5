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

/** Rank at least `min`; returns the shape. */
export function requireMinRank<A>(ctx: OpContext<A>, index: number, min: number): Dim[] {
  const shape = shapeOf(ctx, index);
  if (shape.length < min) {
    throw new OpError(
      `input '${input(ctx, index).name}' has rank ${shape.length} ([${shape.join(', ')}]); ${ctx.node.opType} needs rank ${min} or more`,
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
export function sameDtype<A>(ctx: OpContext<A>, indices?: readonly number[]): DType {
  const present = (indices ? indices.map((i) => ctx.inputs[i]) : ctx.inputs).filter((f): f is InputFacts => f !== undefined);
  const first = present[0];
  if (!first) throw new OpError(`${ctx.node.opType} has no inputs`);
  for (const f of present) {
    if (f.type.dtype !== first.type.dtype) {
      throw new OpError(`inputs '${first.name}' (${first.type.dtype}) and '${f.name}' (${f.type.dtype}) must have the same type`);
    }
  }
  return first.type.dtype;
}

/** A dim nothing is known about: unique per node output and axis, so two of them never compare equal. */
export function unknownDim<A>(ctx: OpContext<A>, output: number, axis: number): string {
  return `?${ctx.node.outputs[output] || ctx.node.name}:${axis}`;
}

export function isUnknownDim(d: Dim): boolean {
  return typeof d === 'string' && d.startsWith('?');
}

/**
 * Two dims that must be equal (Concat's other axes, MatMul's K): a number wins over a symbol, a named
 * symbol over a fresh '?' one. Two different numbers are an OpError naming `what`.
 */
export function mergeDims(a: Dim, b: Dim, what: string): Dim {
  if (a === b) return a;
  if (typeof a === 'number' && typeof b === 'number') throw new OpError(`${what}: ${a} does not match ${b}`);
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return isUnknownDim(a) ? b : a;
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
    else if (typeof da === 'string' || typeof db === 'string') {
      // A symbol facing a number other than 1 must equal it; two symbols: keep the named one.
      out.push(typeof da === 'number' ? da : typeof db === 'number' ? db : isUnknownDim(da) ? db : da);
    } else throw new OpError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
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

/**
 * A product of dims kept symbolic: the numeric factor and the symbols (with repeats). Lets Reshape's
 * -1 and Flatten cancel the batch symbol instead of losing it.
 */
export interface SymbolicProduct {
  factor: number;
  symbols: string[];
}

export function symbolicProduct(dims: readonly Dim[]): SymbolicProduct {
  let factor = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') factor *= d;
    else symbols.push(d);
  }
  return { factor, symbols: symbols.sort() };
}

/**
 * The product as one dim: a number, a lone symbol (times 1), or `fresh` when neither. Equal symbols
 * are equal dims ('?' ones included: each is unique to where it was made), so they may cancel.
 */
export function productDim(p: SymbolicProduct, fresh: string): Dim {
  if (p.symbols.length === 0 || p.factor === 0) return p.factor;
  if (p.symbols.length === 1 && p.factor === 1) return p.symbols[0]!;
  return fresh;
}

/** `total / part` when the symbols of `part` all occur in `total`; undefined when it cannot be decided. */
export function divideProducts(total: SymbolicProduct, part: SymbolicProduct): SymbolicProduct | undefined {
  const left = [...total.symbols];
  for (const s of part.symbols) {
    const i = left.indexOf(s);
    if (i < 0) return undefined;
    left.splice(i, 1);
  }
  if (part.factor === 0) return undefined;
  return { factor: total.factor / part.factor, symbols: left };
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

/** Normalize a list of axes against `rank`; duplicates are an OpError. */
export function normalizeAxes(axes: readonly number[], rank: number, what = 'axes'): number[] {
  const out = axes.map((a) => {
    const n = a < 0 ? a + rank : a;
    if (!Number.isInteger(n) || n < 0 || n >= rank) throw new OpError(`${what} value ${a} is out of range for rank ${rank}`);
    return n;
  });
  if (new Set(out).size !== out.length) throw new OpError(`${what} [${axes.join(', ')}] repeats an axis`);
  return out;
}
