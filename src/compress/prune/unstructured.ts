/**
 * Unstructured pruning: zero the smallest-magnitude weights, per tensor ('layer') or with one
 * threshold across the model ('global'), or in an N:M pattern (keep the n largest of every m
 * consecutive weights along the input axis — 2:4 is what sparse tensor cores run). The file stays
 * dense: zeros shrink the gzip size and a sparse format, not the .onnx, and ONNX Runtime runs the
 * same dense kernels (size.ts reports all three numbers; the bench measures the latency).
 */
import { checkOptionNames, type OptionNames } from '../../util/option-names.js';
import { inputError, usageError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import { makeTensor, toNumbers, type Tensor } from '../../onnx/tensor.js';
import { cloneGraph } from '../../onnx/graph.js';
import { opDefFor } from '../../ops/registry.js';
import { untieIdentityWeights } from '../../passes/untie-weights.js';
import { channelContext } from './node.js';
import type { Scope } from './plan.js';
import { nodesNamed, unknownName } from './names.js';

export interface UnstructuredOptions {
  /** Fraction of weights to zero, in [0, 1) (per tensor for 'layer', overall for 'global'). Not with nm. */
  sparsity?: number;
  scope?: Scope;
  /** N:M: keep the n largest |w| of every m consecutive weights along the input axis. */
  nm?: { n: number; m: number };
  /** Node names whose weights stay dense. */
  keep?: readonly string[];
}

/** A prunable weight: the initializer, the node reading it, and its input axis (for N:M). */
export interface WeightRef {
  name: string;
  node: string;
  tensor: Tensor;
  /** Axis of the input features / channels; undefined when the op has none to group along (depthwise). */
  inputAxis?: number;
}

export interface TensorSparsity {
  name: string;
  node: string;
  elements: number;
  zerosBefore: number;
  zerosAfter: number;
}

export interface UnstructuredResult {
  graph: Graph;
  /** 0/1 per weight element (1 = kept), by initializer name: what the engine's masks take. */
  masks: Map<string, Float32Array>;
  tensors: TensorSparsity[];
  /** Weights left dense, and why. */
  skipped: { name: string; node: string; reason: string }[];
  /** Zeros over all pruned weights after / before. */
  sparsity: number;
  sparsityBefore: number;
}

/**
 * Float weights of the model, found through the ops' channel rules (params with role 'weight'), so the
 * same op knowledge decides what structured and unstructured pruning touch.
 */
export function findWeights(graph: Graph): WeightRef[] {
  const facts = inferShapes(graph);
  const out = new Map<string, WeightRef>();
  for (const f of facts.nodes) {
    const def = opDefFor(f.node);
    const rule = def?.channels;
    if (!def || !rule?.params) continue;
    // Which slice a weight's role sits on does not depend on where the channels came from: axis 1 everywhere.
    // A grouped conv's input axis holds the position within the group (`period`): N:M groups along it as well.
    for (const p of rule.params(channelContext(graph, f, def))) {
      const name = f.node.inputs[p.slot];
      const t = name ? graph.initializers.get(name) : undefined;
      if (p.role !== 'weight' || !name || !t || (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'float64')) continue;
      const ref = out.get(name) ?? { name, node: f.node.name, tensor: t };
      if (p.port.side === 'in') ref.inputAxis = p.axis;
      out.set(name, ref);
    }
  }
  return [...out.values()];
}

/**
 * Masks that keep a sparse model sparse while it trains on: 1 where a weight is non-zero, 0 where it
 * is exactly zero, for the float32 tensors (rank ≥ 2) among `names` — default: every Conv / Gemm /
 * MatMul weight — at least `minZeroFraction` of whose values are exactly zero. Trained dense weights
 * are essentially never exactly zero; pruned ones are, and without a mask their gradients and weight
 * decay would grow them back.
 */
export function masksFromZeros(graph: Graph, names?: Iterable<string>, minZeroFraction = 0.01): Map<string, Float32Array> {
  const masks = new Map<string, Float32Array>();
  for (const name of names ?? findWeights(graph).map((w) => w.name)) {
    const t = graph.initializers.get(name);
    if (!t || t.dtype !== 'float32' || t.dims.length < 2) continue;
    const values = t.data as Float32Array;
    if (countZeros(values) < minZeroFraction * values.length) continue;
    masks.set(name, values.map((v) => (v === 0 ? 0 : 1)));
  }
  return masks;
}

function absValues(t: Tensor): Float32Array {
  const v = t.dtype === 'float32' ? (t.data as Float32Array) : Float32Array.from(toNumbers(t));
  return v.map(Math.abs);
}

function countZeros(a: ArrayLike<number>): number {
  let z = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === 0) z++;
  return z;
}

/**
 * Masks keeping all but the `k` smallest |w| over `values` (concatenated): ties at the threshold are
 * dropped in order, so exactly k elements are masked.
 */
function magnitudeMasks(values: Float32Array[], k: number): Float32Array[] {
  const total = values.reduce((a, v) => a + v.length, 0);
  const masks = values.map((v) => new Float32Array(v.length).fill(1));
  if (k <= 0 || total === 0) return masks;
  const all = new Float32Array(total);
  let at = 0;
  for (const v of values) {
    all.set(v, at);
    at += v.length;
  }
  all.sort();
  const threshold = all[Math.min(k, total) - 1]!;
  let below = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) if (v[i]! < threshold) below++;
  let ties = Math.min(k, total) - below;
  values.forEach((v, t) => {
    const m = masks[t]!;
    for (let i = 0; i < v.length; i++) {
      if (v[i]! < threshold) m[i] = 0;
      else if (v[i] === threshold && ties > 0) {
        m[i] = 0;
        ties--;
      }
    }
  });
  return masks;
}

/** N:M mask along `axis`: in every run of m consecutive elements, keep the n largest. */
export function nmMask(abs: Float32Array, dims: readonly number[], axis: number, n: number, m: number): Float32Array {
  const len = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const mask = new Float32Array(abs.length);
  const idx = new Array<number>(m);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      for (let b = 0; b < len; b += m) {
        for (let t = 0; t < m; t++) idx[t] = (o * len + b + t) * inner + j;
        // Largest first; ties keep the earlier element.
        idx.sort((x, y) => abs[y]! - abs[x]! || x - y);
        for (let t = 0; t < n; t++) mask[idx[t]!] = 1;
      }
    }
  }
  return mask;
}

function applyMask(t: Tensor, mask: Float32Array): Tensor {
  // float16 weights are raw bits: 0 is +0.0 there too, and the kept ones stay bit-identical.
  const data = t.data.slice() as Float32Array;
  for (let i = 0; i < mask.length; i++) if (mask[i] === 0) data[i] = 0;
  return makeTensor(t.dtype, t.dims, data as Tensor['data']);
}

/** Masks for the chosen weights (what gradual pruning hands the engine at each step). */
export function computeMasks(graph: Graph, options: UnstructuredOptions): Omit<UnstructuredResult, 'graph'> {
  const { nm, scope = 'layer' } = options;
  const sparsity = options.sparsity ?? 0;
  if (nm) {
    if (!(Number.isInteger(nm.n) && Number.isInteger(nm.m) && nm.n >= 1 && nm.m >= 2 && nm.n < nm.m)) {
      throw usageError(`N:M pattern ${nm.n}:${nm.m} is invalid`, 'give whole numbers with 1 ≤ N < M, e.g. 2:4');
    }
  } else if (!(sparsity >= 0 && sparsity < 1)) {
    throw usageError(`sparsity ${sparsity} is out of range`, 'give the fraction of weights to zero, in [0, 1)');
  }
  const keep = new Set<string>();
  for (const k of options.keep ?? []) {
    const named = nodesNamed(graph, k);
    if (named.length === 0) throw unknownName(graph, k);
    for (const n of named) keep.add(n);
  }
  const weights = findWeights(graph);
  if (weights.length === 0) {
    throw inputError({ problem: 'has no stored float Conv / Gemm / MatMul weights to prune', fix: 'prune the float model before quantizing' });
  }
  const skipped: UnstructuredResult['skipped'] = [];
  const chosen: WeightRef[] = [];
  for (const w of weights) {
    if (keep.has(w.node)) skipped.push({ name: w.name, node: w.node, reason: 'kept dense (--keep)' });
    else if (nm && w.inputAxis === undefined) skipped.push({ name: w.name, node: w.node, reason: 'depthwise conv: one input channel per filter, nothing to group along' });
    else if (nm && w.tensor.dims[w.inputAxis!]! % nm.m !== 0) {
      skipped.push({ name: w.name, node: w.node, reason: `input axis of ${w.tensor.dims[w.inputAxis!]} is not a multiple of ${nm.m}` });
    } else chosen.push(w);
  }
  const abs = chosen.map((w) => absValues(w.tensor));
  let masks: Float32Array[];
  if (nm) masks = chosen.map((w, i) => nmMask(abs[i]!, w.tensor.dims, w.inputAxis!, nm.n, nm.m));
  else if (scope === 'global') {
    const total = abs.reduce((a, v) => a + v.length, 0);
    masks = magnitudeMasks(abs, Math.round(sparsity * total));
  } else masks = abs.map((v) => magnitudeMasks([v], Math.round(sparsity * v.length))[0]!);

  const tensors: TensorSparsity[] = chosen.map((w, i) => ({
    name: w.name,
    node: w.node,
    elements: abs[i]!.length,
    zerosBefore: countZeros(abs[i]!),
    zerosAfter: countZeros(abs[i]!.map((v, j) => v * masks[i]![j]!)),
  }));
  const elements = tensors.reduce((a, t) => a + t.elements, 0) || 1;
  return {
    masks: new Map(chosen.map((w, i) => [w.name, masks[i]!])),
    tensors,
    skipped,
    sparsity: tensors.reduce((a, t) => a + t.zerosAfter, 0) / elements,
    sparsityBefore: tensors.reduce((a, t) => a + t.zerosBefore, 0) / elements,
  };
}

/** Zero the masked weights: a new Graph of the same structure and file size, with `sparsity` zeros. */
const UNSTRUCTURED_OPTIONS = { sparsity: true, scope: true, nm: true, keep: true } as const satisfies OptionNames<UnstructuredOptions>;

export function pruneUnstructured(source: Graph, options: UnstructuredOptions): UnstructuredResult {
  checkOptionNames('pruneUnstructured', options, UNSTRUCTURED_OPTIONS);
  // Weights torch.onnx merged through Identity nodes are each layer's own again, so each is masked on its own.
  const graph = untieIdentityWeights(source);
  const result = computeMasks(graph, options);
  const g = cloneGraph(graph);
  for (const [name, mask] of result.masks) g.initializers.set(name, applyMask(graph.initializers.get(name)!, mask));
  return { graph: g, ...result };
}
