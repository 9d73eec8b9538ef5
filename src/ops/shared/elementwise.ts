import type { Dim, Node, ValueType } from '../../onnx/graph.js';
import { FLOAT_DTYPES, INT_DTYPES, type DType } from '../../onnx/dtype.js';
import { intAttr } from '../attrs.js';
import { defineOp, OpError, type KnownValue, type OpContext, type OpDef, type OpDefExtras } from '../op-def.js';
import { broadcastIndex } from './known.js';
import { broadcastShapes, input, isStatic, mergeDims, requireDtype, sameDtype, typeOf } from './shapes.js';

/** Float and integer element types: what arithmetic ops accept. */
export const NUMERIC_DTYPES: ReadonlySet<DType> = new Set([...FLOAT_DTYPES, ...INT_DTYPES]);

/**
 * Unary elementwise ops (Relu, Sigmoid, ...): output type = input type. Float inputs unless `dtypes`
 * widens them for an opset. `parseAttrs` reads the op's own attributes; ops without any pass `() => ({})`.
 */
export function unaryFloatOp<A>(
  options: {
    opType: string;
    summary: string;
    parseAttrs: (node: Node, opset: number) => A;
    inputCount?: readonly [number, number];
    dtypes?: (opset: number) => ReadonlySet<DType>;
    /** Applied to statically known (small integer) values, so shape arithmetic through the op stays known. */
    fold?: (x: number) => number;
  } & OpDefExtras<A>,
): OpDef<A> {
  const { opType, summary, parseAttrs, inputCount, dtypes, fold, ...extras } = options;
  return defineOp<A>({
    opType,
    domain: '',
    summary,
    inputCount: inputCount ?? [1, 1],
    outputCount: [1, 1],
    parseAttrs,
    inferTypes(ctx) {
      requireDtype(ctx, 0, dtypes?.(ctx.opset) ?? FLOAT_DTYPES);
      const x = input(ctx, 0);
      return [typeOf(x.type.dtype, x.type.shape)];
    },
    macs: () => 0,
    ...(fold
      ? {
          foldValues(ctx) {
            const known = ctx.inputs[0]?.known;
            if (!known || known.values.some((v) => typeof v !== 'number')) return [undefined];
            return [{ dims: known.dims, values: known.values.map((v) => fold(v as number)) }];
          },
        }
      : {}),
    ...extras,
  });
}

/**
 * Opsets 1-6 broadcast only when asked (broadcast=1): B then matches a contiguous run of A's dims,
 * starting at `axis` (default: A's trailing dims), and the output has A's shape.
 */
export interface BinaryAttrs {
  legacy?: { broadcast: boolean; axis?: number };
}

/**
 * Binary arithmetic with numpy broadcasting (Add, Sub, Mul, Div). `apply` folds known values (shape
 * arithmetic such as H*W computed from a Shape node); it returns undefined where the result is not
 * defined (integer division by zero).
 */
export function binaryArithmeticOp(
  options: {
    opType: string;
    summary: string;
    apply: (a: number, b: number, integer: boolean) => number | undefined;
  } & OpDefExtras<BinaryAttrs>,
): OpDef<BinaryAttrs> {
  const { opType, summary, apply, ...extras } = options;
  return defineOp<BinaryAttrs>({
    opType,
    domain: '',
    summary,
    inputCount: [2, 2],
    outputCount: [1, 1],
    parseAttrs(node, opset) {
      if (opset >= 7) return {};
      const axis = node.attributes['axis'] ? intAttr(node, 'axis', 0) : undefined;
      return { legacy: { broadcast: intAttr(node, 'broadcast', 0) !== 0, ...(axis === undefined ? {} : { axis }) } };
    },
    inferTypes(ctx) {
      requireDtype(ctx, 0, NUMERIC_DTYPES);
      const dtype = sameDtype(ctx);
      const a = input(ctx, 0).type.shape;
      const b = input(ctx, 1).type.shape;
      if (!a || !b) return [typeOf(dtype)];
      const legacy = ctx.attrs.legacy;
      return [typeOf(dtype, legacy ? legacyBroadcast(a, b, legacy) : broadcastShapes(a, b))];
    },
    macs: () => 0,
    foldValues(ctx, outputs) {
      // Legacy broadcasting with an axis aligns B differently from numpy: leave it unfolded.
      if (ctx.attrs.legacy?.axis !== undefined) return [undefined];
      const integer = INT_DTYPES.has(outputs[0]?.dtype ?? 'float32');
      return [foldBinary(ctx, outputs, (x, y) => apply(x, y, integer))];
    },
    ...extras,
  });
}

/** `f` over a binary op's two known inputs, broadcast to its output's static shape; undefined when not known. */
export function foldBinary<A>(ctx: OpContext<A>, outputs: ValueType[], f: (x: number, y: number) => number | undefined): KnownValue | undefined {
  const a = ctx.inputs[0]?.known;
  const b = ctx.inputs[1]?.known;
  const shape = outputs[0]?.shape;
  return a && b && isStatic(shape) ? foldBroadcast(a, b, shape, f) : undefined;
}

/** Elementwise `f` over two known values broadcast to `shape`; undefined if any operand is a symbol. */
function foldBroadcast(
  a: KnownValue,
  b: KnownValue,
  shape: number[],
  f: (x: number, y: number) => number | undefined,
): KnownValue | undefined {
  const n = shape.reduce((p, d) => p * d, 1);
  const values: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a.values[broadcastIndex(i, shape, a.dims)];
    const y = b.values[broadcastIndex(i, shape, b.dims)];
    if (typeof x !== 'number' || typeof y !== 'number') return undefined;
    const r = f(x, y);
    if (r === undefined || !Number.isFinite(r)) return undefined;
    values.push(r);
  }
  return { dims: shape, values };
}

function legacyBroadcast(a: Dim[], b: Dim[], legacy: { broadcast: boolean; axis?: number }): Dim[] {
  const fail = (): never => {
    throw new OpError(`B [${b.join(', ')}] does not match A [${a.join(', ')}] under opset < 7 broadcasting (broadcast=${Number(legacy.broadcast)}${legacy.axis === undefined ? '' : `, axis=${legacy.axis}`})`);
  };
  if (!legacy.broadcast) {
    if (a.length !== b.length) fail();
    return a.map((d, i) => mergeDims(d, b[i]!, `axis ${i} of A and B without broadcast (opset < 7)`));
  }
  const start = legacy.axis === undefined ? a.length - b.length : legacy.axis < 0 ? legacy.axis + a.length : legacy.axis;
  if (start < 0 || start + b.length > a.length) fail();
  b.forEach((d, i) => {
    const ad = a[start + i]!;
    if (typeof d === 'number' && d !== 1 && typeof ad === 'number' && ad !== d) fail();
  });
  return [...a];
}
