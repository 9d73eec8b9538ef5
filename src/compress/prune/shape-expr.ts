/**
 * Shape arithmetic as functions of a channel count. torch.onnx writes `x.chunk(2, 1)` and
 * `x.view(n, 2, c // 2, h, w)` (ShuffleNet's channel shuffle) with bounds and targets computed from
 * `Shape(x)` at run time: Shape → Gather → Add/Div/Mul → Unsqueeze → Concat. After pruning they are
 * recomputed from the smaller tensor, so a channel rule may accept them — if it knows how each entry
 * follows the channel count. This module traces that small integer subgraph back to the Shape it reads.
 */
import type { Graph, Node } from '../../onnx/graph.js';
import type { InferenceResult } from '../../onnx/shape-inference.js';
import { toNumbers } from '../../onnx/tensor.js';

/**
 * One entry of a small integer tensor: a constant; `f(C)` where C is the channel count of value `of`
 * (read through its Shape); a dim that is not a channel count (a symbolic batch size); or `mixed`, which
 * depends on a channel count in a way not traced (channels × batch, or two channel counts).
 */
export type ShapeEntry =
  | { kind: 'const'; value: number }
  | { kind: 'channels'; of: string; f: (channels: number) => number }
  | { kind: 'other' }
  | { kind: 'mixed' };

/** Appended where a computed shape cannot be followed: what helps a model of fixed input size. */
export const FOLD_HINT = ' (pruning folds only shape computations that follow the batch alone: export the model without dynamic_axes, or at least with a fixed height and width, to have them all folded)';

/** Entries of a 1-D (or scalar) integer value; undefined when it cannot be traced. */
export type ShapeExprOf = (value: string) => ShapeEntry[] | undefined;

const OTHER: ShapeEntry = { kind: 'other' };
const MIXED: ShapeEntry = { kind: 'mixed' };

/**
 * A tracer over `graph`. `channelAxisOf(v)` is where value v carries its channels, when known: a
 * Shape entry on that axis becomes `channels`, other static dims constants.
 */
export function shapeExprs(graph: Graph, facts: InferenceResult, channelAxisOf: (value: string) => number | undefined): ShapeExprOf {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const v of n.outputs) if (v) producer.set(v, n);
  const memo = new Map<string, ShapeEntry[] | undefined>();
  const trace = (value: string, depth: number): ShapeEntry[] | undefined => {
    if (memo.has(value)) return memo.get(value);
    const result = depth > 32 ? undefined : traceValue(value, depth);
    memo.set(value, result);
    return result;
  };
  const traceValue = (value: string, depth: number): ShapeEntry[] | undefined => {
    const constant = graph.initializers.get(value);
    if (constant) return constant.dims.length <= 1 && constant.dtype.startsWith('int') ? toNumbers(constant).map(constEntry) : undefined;
    const node = producer.get(value);
    if (!node) return undefined;
    const input = (k: number): ShapeEntry[] | undefined => (node.inputs[k] ? trace(node.inputs[k]!, depth + 1) : undefined);
    switch (node.opType) {
      case 'Constant': {
        const known = facts.known.get(value);
        return known && known.dims.length <= 1 ? known.values.map((v) => (typeof v === 'number' ? constEntry(v) : OTHER)) : undefined;
      }
      case 'Shape': {
        const x = node.inputs[0]!;
        const shape = facts.types.get(x)?.shape;
        if (!shape) return undefined;
        const axis = channelAxisOf(x);
        const rank = shape.length;
        const clamp = (i: number): number => Math.min(rank, Math.max(0, i < 0 ? i + rank : i));
        const start = clamp(intAttribute(node, 'start') ?? 0);
        const end = clamp(intAttribute(node, 'end') ?? rank);
        return shape.slice(start, end).map((d, i): ShapeEntry => {
          if (start + i === axis) return { kind: 'channels', of: x, f: (c) => c };
          return typeof d === 'number' ? constEntry(d) : OTHER;
        });
      }
      case 'Gather': {
        const data = input(0);
        const indices = facts.known.get(node.inputs[1] ?? '');
        if (!data || !indices || (intAttribute(node, 'axis') ?? 0) !== 0 || indices.dims.length > 1) return undefined;
        return indices.values.map((i) => (typeof i === 'number' ? data[i < 0 ? i + data.length : i] ?? OTHER : OTHER));
      }
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Cast':
      case 'Identity':
        return input(0);
      case 'Neg':
        return input(0)?.map((e) => combine(constEntry(0), e, ARITHMETIC.Sub!));
      case 'Concat':
        return (intAttribute(node, 'axis') ?? 0) === 0 ? concatEntries(node.inputs.map((_, k) => input(k))) : undefined;
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const [a, b] = [input(0), input(1)];
        if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
        const op = ARITHMETIC[node.opType]!;
        return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => combine(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!, op));
      }
      default:
        return undefined;
    }
  };
  return (value) => trace(value, 0);
}

function constEntry(value: number): ShapeEntry {
  return { kind: 'const', value };
}

function intAttribute(node: Node, name: string): number | undefined {
  const a = node.attributes[name];
  return a?.type === 'int' ? Number(a.value) : undefined;
}

function concatEntries(parts: (ShapeEntry[] | undefined)[]): ShapeEntry[] | undefined {
  const out: ShapeEntry[] = [];
  for (const p of parts) {
    if (!p) return undefined;
    out.push(...p);
  }
  return out;
}

// Integer arithmetic as ONNX does it on int64 (division truncates).
const ARITHMETIC: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => Math.trunc(a / b),
};

function combine(a: ShapeEntry, b: ShapeEntry, op: (a: number, b: number) => number): ShapeEntry {
  if (a.kind === 'const' && b.kind === 'const') return constEntry(op(a.value, b.value));
  if (a.kind === 'channels' && b.kind === 'const') return { kind: 'channels', of: a.of, f: (c) => op(a.f(c), b.value) };
  if (a.kind === 'const' && b.kind === 'channels') return { kind: 'channels', of: b.of, f: (c) => op(a.value, b.f(c)) };
  return a.kind === 'channels' || b.kind === 'channels' || a.kind === 'mixed' || b.kind === 'mixed' ? MIXED : OTHER;
}

/**
 * Whether `holds(m)` for m = 1 … 12: how a computed shape is checked to follow a channel count (a
 * division or a fraction of it shows within a few multiples).
 */
export function forSampleCounts(holds: (m: number) => boolean): boolean {
  return Array.from({ length: 12 }, (_, k) => k + 1).every(holds);
}

/** The entry's value for channel count `c` of `of`: constants as they are; undefined when it follows something else. */
export function entryAt(entry: ShapeEntry, of: string, c: number): number | undefined {
  if (entry.kind === 'const') return entry.value;
  if (entry.kind === 'channels' && entry.of === of) return entry.f(c);
  return undefined;
}
