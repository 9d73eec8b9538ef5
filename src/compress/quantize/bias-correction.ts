/**
 * Bias correction (Nagel et al., "Data-Free Quantization", 2019, §4.2, with empirical input means):
 * rounding a layer's weights shifts the mean of its outputs by ΔW · E[x], where ΔW = dequantized − float
 * weight and E[x] the per-channel mean of the layer's input over the calibration data. Subtracting that
 * shift from the bias removes the systematic part of the weight error. Zero padding at the borders is
 * ignored (E[x] is taken as the same at every kernel tap).
 */
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { float32, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import type { ActivationCollector } from './calibrate/index.js';
import type { QuantPlan } from './mark.js';
import { dequantizeArray } from './math.js';
import { quantizeWeight } from './params.js';
import type { QuantizeOptions } from './types.js';

export function correctBiases(graph: Graph, plan: QuantPlan, collector: ActivationCollector, options: Pick<QuantizeOptions, 'weightType' | 'reduceRange'>): Graph {
  const g = cloneGraph(graph);
  const index = new GraphIndex(g);
  const taken = valueNames(g);
  for (const node of g.nodes) {
    if (node.opType !== 'Conv' && node.opType !== 'Gemm') continue;
    const [x, wName] = node.inputs;
    const planned = wName ? plan.tensors.get(wName) : undefined;
    if (!x || !wName || planned?.kind !== 'weight') continue;
    if (node.opType === 'Gemm' && !isPlainGemm(node)) continue;
    const mean = collector.channelMean(x);
    const w = g.initializers.get(wName);
    if (!mean || w?.dtype !== 'float32') continue;
    const wq = quantizeWeight(w, planned.axis, options);
    const dq = dequantizeArray(wq.values, w.dims, planned.axis, wq.params);
    const shift = node.opType === 'Conv' ? convShift(w, dq, mean, groupOf(node)) : gemmShift(w, dq, mean, node.attributes['transB']?.value === 1);
    if (!shift) continue;
    setBias(g, index, node, shift, taken);
  }
  return g;
}

function isPlainGemm(node: Node): boolean {
  const a = node.attributes;
  return !a['transA']?.value && (a['alpha']?.value ?? 1) === 1 && (a['beta']?.value ?? 1) === 1;
}

function groupOf(node: Node): number {
  const g = node.attributes['group'];
  return g?.type === 'int' ? g.value : 1;
}

/** Δy[m] = Σ_{i,k} ΔW[m, i, k] · E[x][group(m)·Cg + i]. */
function convShift(w: Tensor, dq: Float32Array, mean: Float64Array, group: number): Float64Array | undefined {
  const [m, cg] = [w.dims[0]!, w.dims[1]!];
  if (mean.length !== cg * group) return undefined;
  const kernel = w.data.length / (m * cg);
  const perGroup = m / group;
  const data = w.data as Float32Array;
  const shift = new Float64Array(m);
  for (let o = 0; o < m; o++) {
    const base = Math.floor(o / perGroup) * cg;
    let s = 0;
    for (let i = 0; i < cg; i++) {
      const e = mean[base + i]!;
      const off = (o * cg + i) * kernel;
      for (let k = 0; k < kernel; k++) s += (dq[off + k]! - data[off + k]!) * e;
    }
    shift[o] = s;
  }
  return shift;
}

/** Y = X·W (W [K, N]) or X·Wᵀ (W [N, K]): Δy[n] = Σ_k ΔW[n,k] · E[x][k]. */
function gemmShift(w: Tensor, dq: Float32Array, mean: Float64Array, transB: boolean): Float64Array | undefined {
  const [rows, cols] = [w.dims[0]!, w.dims[1]!];
  const [n, k] = transB ? [rows, cols] : [cols, rows];
  if (mean.length !== k) return undefined;
  const data = w.data as Float32Array;
  const shift = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const [out, inp] = transB ? [r, c] : [c, r];
      shift[out]! += (dq[i]! - data[i]!) * mean[inp]!;
    }
  }
  return shift;
}

/** bias ← bias − shift, in a new tensor (a fresh name when another node shares the bias); adds a bias when there is none. */
function setBias(g: Graph, index: GraphIndex, node: Node, shift: Float64Array, taken: Set<string>): void {
  const name = node.inputs[2];
  const old = name ? g.initializers.get(name) : undefined;
  if (name && old?.dtype !== 'float32') return;
  if (old && old.data.length !== shift.length) return;
  const values = Float32Array.from(shift, (s, i) => (old ? (old.data as Float32Array)[i]! : 0) - s);
  const shared = name !== undefined && index.consumersOf(name).length > 1;
  const target = name && !shared ? name : freshName(taken, `${node.name || node.outputs[0]}.bias_corrected`);
  g.initializers.set(target, float32([shift.length], values));
  while (node.inputs.length < 3) node.inputs.push('');
  node.inputs[2] = target;
}
