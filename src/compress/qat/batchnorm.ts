/**
 * BatchNorm live for the first epochs of QAT, then folded. PTQ's graph has every BN folded into its
 * Conv; this puts the model's own BN back behind each quantized Conv (weights unfolded, the weight's
 * scale divided by |γ/σ| so its integers are unchanged), so the first epochs train with batch
 * statistics as the float model did. Folding it back afterwards is exact for the weights: with
 * symmetric per-channel quantization, scaling output channel c by k_c and its scale by |k_c| keeps
 * every integer (round(k·w / (|k|·s)) = ±round(w / s)). From then on BN is frozen into the int8 form.
 */
import { SlimError } from '../../errors.js';
import { untieIdentityWeights } from '../../passes/untie-weights.js';
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { float32 } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import { nodeLabel } from '../quantize/mark.js';
import type { QatGraph } from './graph.js';

/** A BatchNormalization put back behind a quantized Conv. */
export interface LiveBatchNorm {
  /** The BN node (in the live graph) and the Conv it follows, by label. */
  node: string;
  layer: string;
  weight: string;
  scale: string;
  bias: string;
}

export interface LiveBatchNormGraph {
  graph: Graph;
  batchNorms: LiveBatchNorm[];
}

/** BN's per-channel factor γ / sqrt(var + ε), as foldBatchNorm computes it. */
function bnFactors(g: Graph, bn: Node): { k: Float64Array; shift: Float64Array } {
  const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5).map((n) => g.initializers.get(n ?? '')?.data as Float32Array | undefined);
  if (!gamma || !beta || !mean || !variance) throw new SlimError({ where: `node '${bn.name}'`, problem: 'a BatchNormalization without constant parameters cannot be folded' });
  const a = bn.attributes['epsilon'];
  const eps = Math.fround(a?.type === 'float' ? a.value : 1e-5);
  const k = Float64Array.from(gamma, (gv, c) => gv / Math.sqrt(variance[c]! + eps));
  return { k, shift: Float64Array.from(beta, (b, c) => b - mean[c]! * k[c]!) };
}

/**
 * The QAT graph with `unfolded`'s BatchNormalizations back behind the quantized Convs they were folded
 * into (matched by Conv name: BN folding and PTQ keep node names). Convs without a BN, and BNs that are
 * not the sole reader of a quantized Conv, stay as they are.
 */
export function withLiveBatchNorm(qat: QatGraph, loaded: Graph, options: { file?: string } = {}): LiveBatchNormGraph {
  // A fresh export's γ and running statistics sit behind Identity nodes (untie-weights.ts).
  const unfolded = untieIdentityWeights(loaded);
  const g = cloneGraph(qat.graph);
  const taken = valueNames(g);
  const source = new GraphIndex(unfolded);
  const unfoldedConvs = new Map(unfolded.nodes.filter((n) => n.opType === 'Conv').map((n) => [nodeLabel(n), n]));
  const batchNorms: LiveBatchNorm[] = [];
  const inserts = new Map<Node, Node>();
  for (const w of qat.layout.weights) {
    const conv = g.nodes.find((n) => nodeLabel(n) === w.layer);
    const original = unfoldedConvs.get(w.layer);
    if (conv?.opType !== 'Conv' || !original) continue;
    const readers = source.consumersOf(original.outputs[0]!);
    const bn = readers.length === 1 && readers[0]!.opType === 'BatchNormalization' ? readers[0]! : undefined;
    const w0 = unfolded.initializers.get(original.inputs[1] ?? '');
    if (!bn || w0?.dtype !== 'float32') continue;
    const zero = g.initializers.get(w.zeroPoint)?.data;
    if (w.axis === undefined || !zero || Array.from(zero as Int8Array).some((z) => z !== 0)) {
      throw new SlimError({ ...(options.file ? { file: options.file } : {}), where: `layer '${w.layer}'`, problem: 'live BatchNorm needs symmetric per-channel weights (zero point 0)', fix: 'quantize without --per-tensor, or keep BN folded' });
    }
    // The layer's float bias (QAT's form of PTQ's int32 bias) takes the Conv's own (usually none: BN's shift carries it).
    const bias = conv.inputs[2] ?? '';
    if (!bias || g.initializers.get(bias)?.dtype !== 'float32') continue;
    const { k } = bnFactors(unfolded, bn);
    // A channel BN zeroes (γ = 0) has no unfolded scale: that layer stays folded.
    if (k.some((v) => !(Math.abs(v) > 1e-12))) continue;
    const b0 = original.inputs[2] ? (unfolded.initializers.get(original.inputs[2])?.data as Float32Array | undefined) : undefined;
    g.initializers.set(bias, float32([k.length], b0 ?? new Float32Array(k.length)));
    // Unfolded weights, and scales that give them the integers the folded weights had.
    g.initializers.set(w.name, float32(w0.dims, w0.data as Float32Array));
    const scale = g.initializers.get(w.scale)!.data as Float32Array;
    g.initializers.set(w.scale, float32([scale.length], Float32Array.from(scale, (s, c) => s / Math.abs(k[c]!))));
    // BN's parameters under fresh names, the Conv writing into it.
    const params = bn.inputs.slice(1, 5).map((name) => {
      const fresh = freshName(taken, `${bn.name || 'bn'}.${name}`);
      g.initializers.set(fresh, unfolded.initializers.get(name)!);
      return fresh;
    });
    const y = conv.outputs[0]!;
    const t = freshName(taken, `${y}_before_bn`);
    conv.outputs = [t];
    const node: Node = { name: freshName(taken, bn.name || `${w.layer}_bn`), opType: 'BatchNormalization', domain: '', inputs: [t, ...params], outputs: [y], attributes: { ...bn.attributes } };
    inserts.set(conv, node);
    batchNorms.push({ node: node.name, layer: w.layer, weight: w.name, scale: w.scale, bias });
  }
  if (batchNorms.length === 0) {
    throw new SlimError({
      ...(options.file ? { file: options.file } : {}),
      problem: 'the model has no BatchNormalization behind its quantized Convs (it was folded when the model was exported)',
      fix: 'train with BN folded (drop the live-BN epochs), or start from a model that keeps its BatchNormalization nodes',
    });
  }
  g.nodes = g.nodes.flatMap((n) => (inserts.has(n) ? [n, inserts.get(n)!] : [n]));
  return { graph: g, batchNorms };
}

/** Fold the (trained) live BNs back: weights × k, bias (b − μ)·k + β, weight scales × |k|. */
export function foldLiveBatchNorm(trained: Graph, live: readonly LiveBatchNorm[]): Graph {
  const g = cloneGraph(trained);
  const doomed = new Set<Node>();
  for (const b of live) {
    const bn = g.nodes.find((n) => n.name === b.node);
    const conv = g.nodes.find((n) => nodeLabel(n) === b.layer);
    if (!bn || !conv) throw new SlimError({ where: `node '${b.node}'`, problem: 'the trained graph lacks a BatchNormalization it was trained with' });
    const { k, shift } = bnFactors(g, bn);
    const w = g.initializers.get(b.weight)!;
    const data = w.data as Float32Array;
    const inner = data.length / k.length;
    g.initializers.set(b.weight, float32(w.dims, Float32Array.from(data, (v, i) => v * k[Math.floor(i / inner)]!)));
    const scale = g.initializers.get(b.scale)!.data as Float32Array;
    g.initializers.set(b.scale, float32([scale.length], Float32Array.from(scale, (s, c) => Math.abs(s) * Math.abs(k[c]!))));
    const bias = g.initializers.get(b.bias)!.data as Float32Array;
    g.initializers.set(b.bias, float32([k.length], Float32Array.from(bias, (v, c) => v * k[c]! + shift[c]!)));
    conv.outputs = [bn.outputs[0]!];
    doomed.add(bn);
    for (const name of bn.inputs.slice(1)) if (name) g.initializers.delete(name);
  }
  g.nodes = g.nodes.filter((n) => !doomed.has(n));
  return g;
}
