import { cloneGraph, type Dim, type Graph, type Node } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { float32, int64, makeTensor } from '../onnx/tensor.js';
import type { Pass } from './pass.js';
import { eliminateDeadCode } from './dead-code.js';
import { freshName, isGraphOutput, valueNames } from './rewrite.js';

/**
 * The static shape a Reshape can take instead of a computed one: entries equal to the data input's own
 * dim at the same position become 0 ("copy", when allowzero is off), and one remaining unknown becomes
 * -1. Returns undefined when the shape still depends on more than one free dimension.
 */
function staticReshapeTarget(target: readonly Dim[], dataShape: readonly Dim[] | undefined, allowZero: boolean): number[] | undefined {
  const out: number[] = [];
  let unknown = 0;
  for (let i = 0; i < target.length; i++) {
    const v = target[i]!;
    if (typeof v === 'number') out.push(v);
    else if (!allowZero && dataShape?.[i] === v) out.push(0);
    else {
      out.push(-1);
      unknown++;
    }
  }
  const inferred = out.filter((v) => v === -1).length;
  return unknown <= 1 && inferred <= 1 ? out : undefined;
}

/**
 * The static shape an Expand can take instead of a computed one (`x * y.expand_as(x)` in a
 * squeeze-excitation block): Expand broadcasts both ways, so an entry equal to the input's own dim at
 * the same right-aligned position can be 1; so can one that every reader broadcasts back
 * (`broadcastBack`: `x * gamma.expand_as(x)` with a batch-less γ, whose Mul takes the batch from x).
 * Returns undefined when any other entry is not a number.
 */
function staticExpandTarget(target: readonly Dim[], dataShape: readonly Dim[] | undefined, broadcastBack: (entry: number, dim: string) => boolean): number[] | undefined {
  if (!dataShape) return undefined;
  const offset = target.length - dataShape.length;
  const out: number[] = [];
  for (let i = 0; i < target.length; i++) {
    const v = target[i]!;
    if (typeof v === 'number') out.push(v);
    else if ((i - offset >= 0 && dataShape[i - offset] === v) || broadcastBack(i, v)) out.push(1);
    else return undefined;
  }
  return out;
}

/** Elementwise ops that broadcast both inputs numpy-style: a 1 in one is the other's dim. */
const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * Whether every reader of `value` (rank `rank`) is a broadcasting elementwise op whose other input
 * has `dim` at target entry `entry` (right-aligned): a 1 there comes back as `dim` in its output.
 */
function readersBroadcastBack(g: Graph, facts: ReturnType<typeof inferShapes>, value: string, rank: number, entry: number, dim: string): boolean {
  if (isGraphOutput(g, value)) return false;
  const readers = g.nodes.filter((n) => n.inputs.includes(value));
  return readers.length > 0 && readers.every((n) => {
    if (!BROADCASTING.has(n.opType) || n.inputs.length !== 2 || n.inputs[0] === n.inputs[1]) return false;
    const other = facts.types.get(n.inputs[0] === value ? n.inputs[1]! : n.inputs[0]!)?.shape;
    return other !== undefined && other.length >= rank && other[other.length - rank + entry] === dim;
  });
}

/**
 * Constant-fold the shape subgraphs exporters emit (Shape → Gather → Unsqueeze → Concat → Reshape):
 * Reshape and Expand targets that depend only on the input's own dims (the batch) become static
 * (Reshape: 0 = copy that dim; Expand: 1 = keep it), values shape inference knows exactly become
 * initializers, and the now-dead subgraph is removed. A computation that stays (a target with a free
 * height beside a channel count) is left whole: `c // 2` folded to 8 inside it would go stale when
 * pruning removes channels, where computed from Shape it follows (ShuffleNet's channel shuffle).
 * `keepDataArithmetic` (pruning): integers float arithmetic reads are left computed too (readAsData).
 */
export function foldShapeSubgraphs(graph: Graph, o: { keepDataArithmetic?: boolean } = {}): Graph {
  const g = cloneGraph(graph);
  const facts = inferShapes(g);
  const taken = valueNames(g);
  const isInteger = (v: string): boolean => ['int64', 'int32'].includes(facts.types.get(v)?.dtype ?? '');
  // Pruning keeps what float arithmetic reads computed; training needs every shape static, and folds it.
  const data = o.keepDataArithmetic ? readAsData(g, isInteger) : new Set<string>();
  const casts = new Set(g.nodes.filter((n) => n.opType === 'Cast').flatMap((n) => n.outputs));
  // Integer values known exactly, in a form a JS number holds (near INT64_MAX, "slice to the end", the
  // node computes it). A count cast to float (`x.shape[1] - 1` in a variance) is folded for training,
  // which has no Cast; pruning leaves it and the integers it reads computed (readAsData).
  const foldable = (out: string): boolean => {
    const v = facts.known.get(out);
    if (!v || isGraphOutput(g, out) || data.has(out) || !v.values.every((x) => typeof x === 'number')) return false;
    if (isInteger(out)) return v.values.every((x) => Number.isSafeInteger(x));
    return !o.keepDataArithmetic && casts.has(out) && facts.types.get(out)?.dtype === 'float32';
  };

  // Targets known but for the input's own dims; one known outright is folded below under its own name.
  for (const node of g.nodes) {
    if (node.opType !== 'Reshape' && node.opType !== 'Expand') continue;
    const shapeName = node.inputs[1];
    if (!shapeName || g.initializers.has(shapeName) || foldable(shapeName)) continue;
    const known = facts.known.get(shapeName);
    const dataShape = facts.types.get(node.inputs[0] ?? '')?.shape;
    const allowZero = node.attributes['allowzero']?.value === 1;
    const broadcastBack = (entry: number, dim: string): boolean => readersBroadcastBack(g, facts, node.outputs[0]!, known!.values.length, entry, dim);
    const target = known && (node.opType === 'Reshape' ? staticReshapeTarget(known.values, dataShape, allowZero) : staticExpandTarget(known.values, dataShape, broadcastBack));
    if (!target) continue;
    const name = freshName(taken, `${node.name || node.opType.toLowerCase()}.shape`);
    g.initializers.set(name, int64([target.length], target));
    node.inputs = [node.inputs[0]!, name];
    // A stored type of the output may hold the dim an Expand now leaves at 1 for its readers to broadcast.
    if (node.opType === 'Expand') g.valueInfo.delete(node.outputs[0]!);
  }

  const live = eliminateDeadCode(g);
  const kept = keptWhole(live, isInteger, foldable);
  const doomed = new Set<Node>();
  const folded = new Map<string, string>();
  for (const node of live.nodes) {
    const outs = node.outputs.filter(Boolean);
    if (node.opType === 'Constant' || outs.length === 0 || !outs.every(foldable)) continue;
    for (const out of outs) {
      const v = facts.known.get(out)!;
      const numbers = v.values as number[];
      const dtype = facts.types.get(out)!.dtype;
      const tensor = dtype === 'float32' ? float32(v.dims, numbers) : dtype === 'int32' ? makeTensor('int32', v.dims, Int32Array.from(numbers)) : int64(v.dims, numbers);
      // Read by a computation that stays: the node stays for it, the other readers get the constant.
      const name = kept.has(node) ? freshName(taken, `${out}.folded`) : out;
      live.initializers.set(name, tensor);
      if (name !== out) folded.set(out, name);
      else live.valueInfo.delete(out);
    }
    if (!kept.has(node)) doomed.add(node);
  }
  live.nodes = live.nodes.filter((n) => !doomed.has(n));
  for (const node of live.nodes) if (!kept.has(node)) node.inputs = node.inputs.map((v) => folded.get(v) ?? v);
  return eliminateDeadCode(live);
}

/** ONNX TensorProto data types of floats: float, float16, double, bfloat16. */
const FLOAT_TYPES: ReadonlySet<number> = new Set([1, 10, 11, 16]);

/**
 * The integer values that float arithmetic reads through a Cast (and every integer value they are
 * computed from): an unbiased variance's `/ (x.shape[1] - 1)`, Shape → Gather → Sub → Cast. Folded, it
 * would keep the channel count the model was exported with, stale once pruning removes channels (a
 * normalization over 8 of 16 channels off by up to 1.4); computed from Shape it follows them.
 */
function readAsData(g: Graph, isInteger: (value: string) => boolean): Set<string> {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const v of n.outputs) if (v) producer.set(v, n);
  const data = new Set<string>();
  const visit = (v: string): void => {
    if (!v || data.has(v) || !isInteger(v)) return;
    data.add(v);
    const p = producer.get(v);
    if (p && p.opType !== 'Constant') for (const input of p.inputs) visit(input);
  };
  for (const n of g.nodes) {
    if (n.opType === 'Cast' && FLOAT_TYPES.has(Number(n.attributes['to']?.value))) visit(n.inputs[0] ?? '');
  }
  return data;
}

/**
 * The integer nodes a computation that stays needs: one writing an integer value not known (the
 * free height in a Reshape target), and, back from it, every node whose known output it reads.
 */
function keptWhole(g: Graph, isInteger: (value: string) => boolean, foldable: (value: string) => boolean): Set<Node> {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const v of n.outputs) if (v) producer.set(v, n);
  const kept = new Set<Node>();
  const keep = (node: Node): void => {
    if (kept.has(node)) return;
    kept.add(node);
    for (const v of node.inputs) {
      const p = v ? producer.get(v) : undefined;
      if (p && p.opType !== 'Constant' && foldable(v)) keep(p);
    }
  };
  for (const node of g.nodes) if (node.outputs.some((o) => o && isInteger(o) && !foldable(o))) keep(node);
  return kept;
}

/**
 * Whether the graph computes shapes that folding may turn into constants: from a Shape, or from
 * constants alone (torch.onnx's `expand(-1, C, -1, -1)`: ConstantOfShape → Equal → Where).
 */
export function computesShapes(graph: Graph): boolean {
  return graph.nodes.some((n) => n.opType === 'Shape' || n.opType === 'ConstantOfShape');
}

export const foldShapesPass: Pass = {
  name: 'fold-shape-subgraphs',
  description: 'replace statically known shape computations with constants',
  run: foldShapeSubgraphs,
};
