import { cloneGraph, GraphIndex, type Graph, type Node } from '../onnx/graph.js';
import { float32, numel, toNumbers, type Tensor } from '../onnx/tensor.js';
import type { Pass } from './pass.js';
import { freshName, valueNames } from './rewrite.js';

interface BatchNormParams {
  /** γ / sqrt(var + ε), per channel. */
  scale: Float64Array;
  /** β − mean · scale, per channel. */
  shift: Float64Array;
}

function float32Initializer(graph: Graph, name: string | undefined): Tensor<'float32'> | undefined {
  const t = name ? graph.initializers.get(name) : undefined;
  return t?.dtype === 'float32' ? (t as Tensor<'float32'>) : undefined;
}

/** The per-channel affine map of an inference BatchNormalization, when all its parameters are constants. */
function batchNormParams(graph: Graph, bn: Node): BatchNormParams | undefined {
  if (bn.outputs.filter(Boolean).length !== 1) return undefined; // training form
  if (bn.attributes['training_mode']?.value === 1) return undefined;
  const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5).map((n) => float32Initializer(graph, n));
  if (!gamma || !beta || !mean || !variance) return undefined;
  const epsilon = bn.attributes['epsilon']?.type === 'float' ? bn.attributes['epsilon'].value : 1e-5;
  const c = gamma.data.length;
  if ([beta, mean, variance].some((t) => t.data.length !== c)) return undefined;
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    // Math.fround matches the float32 ε ORT uses, so folded and unfolded outputs agree to rounding.
    scale[i] = gamma.data[i]! / Math.sqrt(variance.data[i]! + Math.fround(epsilon));
    shift[i] = beta.data[i]! - mean.data[i]! * scale[i]!;
  }
  return { scale, shift };
}

/** Store a new weight: reuse the name when only this node reads it, otherwise add a fresh initializer. */
function replaceWeight(graph: Graph, index: GraphIndex, node: Node, slot: number, value: Tensor, taken: Set<string>): void {
  const old = node.inputs[slot];
  if (old && index.consumersOf(old).length === 1 && !graph.inputs.some((v) => v.name === old)) {
    graph.initializers.set(old, value);
    return;
  }
  const name = freshName(taken, `${node.name || node.opType}.folded_${slot}`);
  graph.initializers.set(name, value);
  while (node.inputs.length <= slot) node.inputs.push('');
  node.inputs[slot] = name;
}

function foldIntoConv(graph: Graph, index: GraphIndex, conv: Node, bn: BatchNormParams, taken: Set<string>): boolean {
  const w = float32Initializer(graph, conv.inputs[1]);
  const b = conv.inputs[2] ? float32Initializer(graph, conv.inputs[2]) : undefined;
  if (!w || (conv.inputs[2] && !b)) return false;
  const outChannels = w.dims[0]!;
  if (outChannels !== bn.scale.length) return false;
  const perChannel = numel(w.dims) / outChannels;
  const weight = new Float32Array(w.data.length);
  for (let o = 0; o < outChannels; o++) {
    const s = bn.scale[o]!;
    for (let k = o * perChannel; k < (o + 1) * perChannel; k++) weight[k] = w.data[k]! * s;
  }
  const bias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) bias[o] = (b ? b.data[o]! : 0) * bn.scale[o]! + bn.shift[o]!;
  replaceWeight(graph, index, conv, 1, float32(w.dims, weight), taken);
  replaceWeight(graph, index, conv, 2, float32([outChannels], bias), taken);
  return true;
}

/** y = α·A·B + β·C followed by BN over features becomes α·A·(B∘s) + C′ with C′ = β·C·s + shift and β = 1. */
function foldIntoGemm(graph: Graph, index: GraphIndex, gemm: Node, bn: BatchNormParams, taken: Set<string>): boolean {
  const w = float32Initializer(graph, gemm.inputs[1]);
  if (!w || w.dims.length !== 2) return false;
  const transB = gemm.attributes['transB']?.value === 1;
  const [rows, cols] = w.dims as [number, number];
  const features = transB ? rows : cols;
  if (features !== bn.scale.length) return false;
  const c = gemm.inputs[2] ? float32Initializer(graph, gemm.inputs[2]) : undefined;
  if (gemm.inputs[2] && !c) return false;
  const cValues = c ? toNumbers(c) : [0];
  // Per-feature C only: [], [1], [F] or [1, F]. A [M, 1] row bias with M = F has F values too, but
  // broadcasts over rows, not features; it and [M, F] biases stay with an unfolded BN.
  const cDims = c?.dims ?? [];
  const perFeature = cDims.length === 0 || (cDims.length === 1 && (cDims[0] === 1 || cDims[0] === features)) ||
    (cDims.length === 2 && cDims[0] === 1 && (cDims[1] === features || cDims[1] === 1));
  if (c && !perFeature) return false;
  const beta = gemm.attributes['beta']?.type === 'float' ? gemm.attributes['beta'].value : 1;

  const weight = new Float32Array(w.data.length);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) weight[r * cols + k] = w.data[r * cols + k]! * bn.scale[transB ? r : k]!;
  }
  const bias = new Float32Array(features);
  for (let f = 0; f < features; f++) {
    const cf = cValues.length === 1 ? cValues[0]! : cValues[f]!;
    bias[f] = beta * cf * bn.scale[f]! + bn.shift[f]!;
  }
  replaceWeight(graph, index, gemm, 1, float32(w.dims, weight), taken);
  replaceWeight(graph, index, gemm, 2, float32([features], bias), taken);
  gemm.attributes = { ...gemm.attributes, beta: { type: 'float', value: 1 } };
  return true;
}

/**
 * Fold inference BatchNormalization into the Conv or Gemm that feeds it (when that layer's output goes
 * nowhere else): weights scaled per output channel, the shift moved into the bias. One node fewer per
 * layer and the form int8 kernels and pruning expect. `only`: the BN nodes to fold (default all).
 */
export function foldBatchNorm(graph: Graph, only?: (bn: Node) => boolean): Graph {
  const g = cloneGraph(graph);
  const taken = valueNames(g);
  const doomed = new Set<Node>();
  for (const bn of [...g.nodes]) {
    if (bn.opType !== 'BatchNormalization' || (only && !only(bn))) continue;
    const index = new GraphIndex(g);
    const x = bn.inputs[0];
    const layer = x ? index.producer.get(x) : undefined;
    if (!layer || !x || index.soleConsumer(x) !== bn) continue;
    if (layer.opType !== 'Conv' && layer.opType !== 'Gemm') continue;
    const params = batchNormParams(g, bn);
    if (!params) continue;
    const folded = layer.opType === 'Conv'
      ? foldIntoConv(g, index, layer, params, taken)
      : foldIntoGemm(g, index, layer, params, taken);
    if (!folded) continue;
    layer.outputs = [bn.outputs[0]!];
    g.valueInfo.delete(x);
    doomed.add(bn);
    g.nodes = g.nodes.filter((n) => n !== bn);
  }
  if (doomed.size === 0) return g;
  // BN parameters nobody reads any more go with the nodes.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const bn of doomed) {
    for (const name of bn.inputs.slice(1)) {
      if (name && !read.has(name) && !g.inputs.some((v) => v.name === name)) g.initializers.delete(name);
    }
  }
  return g;
}

export const foldBatchNormPass: Pass = {
  name: 'fold-batchnorm',
  description: 'fold inference BatchNormalization into the preceding Conv or Gemm',
  run: (graph) => foldBatchNorm(graph),
};
