/**
 * A classifier's scores put in another class order: the head's weight rows (columns of a Gemm without
 * transB or of a MatMul, output channels of a 1×1 Conv) and its bias entries permuted, so that output i
 * of the result is output `order[i]` of the input — the same network, its scores listed otherwise. Used
 * where a trained model must score classes in someone else's order (a distillation student recording
 * the teacher's classes in another order). Everything behind the head keeps one score per class
 * (findClassifierHead), so permuting the head permutes the scores. Pure.
 */
import { SlimError } from '../errors.js';
import { cloneGraph, GraphIndex, type Graph } from '../onnx/graph.js';
import { allocArray } from '../onnx/dtype.js';
import { makeTensor, numel, type Tensor } from '../onnx/tensor.js';
import { findClassifierHead } from './replace-head.js';
import { freshName, valueNames } from './rewrite.js';
import { untieIdentityWeights } from './untie-weights.js';

/** `t` with its slices along `axis` taken in `order` (slice i of the result is slice order[i]). */
function permuteAxis(t: Tensor, axis: number, order: readonly number[]): Tensor {
  const outer = numel(t.dims.slice(0, axis));
  const inner = numel(t.dims.slice(axis + 1));
  const n = t.dims[axis]!;
  const data = allocArray(t.dtype, t.data.length);
  // Element by element: one loop for every dtype (typed arrays, bigint arrays, strings).
  const from = t.data as ArrayLike<unknown>;
  const to = data as unknown as unknown[];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < inner; k++) to[(o * n + i) * inner + k] = from[(o * n + order[i]!) * inner + k];
    }
  }
  return makeTensor(t.dtype, t.dims, data);
}

export function reorderClassScores(graph: Graph, order: readonly number[]): Graph {
  const g = untieIdentityWeights(graph);
  const head = findClassifierHead(g);
  if (order.length !== head.classes || new Set(order).size !== order.length || order.some((i) => !Number.isInteger(i) || i < 0 || i >= head.classes)) {
    throw new SlimError({ where: 'class order', problem: `[${order.join(', ')}] is not an order of the head's ${head.classes} classes`, fix: 'give each class position exactly once' });
  }
  if (order.every((from, i) => from === i)) return g;
  const out = cloneGraph(g);
  const index = new GraphIndex(out);
  const taken = valueNames(out);
  const layer = out.nodes[head.at]!;
  // A tensor read by another node too keeps its values for that one: the permuted copy gets a name of its own.
  const store = (name: string, value: Tensor, readers: { inputs: string[] }[]): void => {
    const own = index.consumersOf(name).length === readers.length && !out.inputs.some((v) => v.name === name);
    const target = own ? name : freshName(taken, `${name}_reordered`);
    out.initializers.set(target, value);
    for (const r of readers) r.inputs = r.inputs.map((v) => (v === name ? target : v));
  };
  const weight = out.initializers.get(head.weight)!;
  const classAxis = head.kind === 'Conv' || (head.kind === 'Gemm' && layer.attributes['transB']?.value === 1) ? 0 : 1;
  store(head.weight, permuteAxis(weight, classAxis, order), [layer]);
  if (head.bias) {
    const bias = out.initializers.get(head.bias);
    if (!bias) throw new SlimError({ where: 'classifier head', problem: `the bias '${head.bias}' of '${head.node}' is computed, not stored`, fix: 'export the model with constant classifier weights' });
    // [k] or a broadcast [1, k]; a bias of one value (Gemm's broadcast C) is the same for every class.
    const reader = head.kind === 'MatMul' ? out.nodes[head.tailAt[0]!]! : layer;
    if (numel(bias.dims) === head.classes) store(head.bias, permuteAxis(bias, bias.dims.indexOf(head.classes), order), [reader]);
  }
  return out;
}
