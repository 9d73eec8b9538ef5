/**
 * After channels are removed, each Conv or Gemm whose inputs lost channels gets back, per output channel,
 * the mean and spread it had in the unpruned model over calibration images: out' = (out − μ′)·σ/σ′ + μ,
 * a scale of the layer's weights and a shift of its bias. On Convs it is what re-estimating BatchNorm
 * statistics on the pruned network does (EagleEye's "adaptive BN"), done on weights BatchNorm was folded
 * into: slim train and torch.onnx write models without BN, where no statistics are left to re-estimate.
 * On the classifier it gives each class its mean score and spread back: a heavy cut had left a net
 * predicting one class (ResNet18-CIFAR ×0.25 at half its MACs, 2,000 test images: 9.9 % with mean replacement, 32.9 % so).
 * It supersedes mean replacement (apply.ts) for these layers: whatever bias that folded in, the mean is
 * set here. Layers are corrected in waves by depth, each wave measured with its inputs corrected.
 */
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { makeTensor } from '../../onnx/tensor.js';
import { channelMoments } from '../../runtime/channel-stats.js';
import type { Calibration } from './calibrate.js';

/** A spread ratio past these bounds is a channel the pruning all but silenced or blew up: left at the bound. */
const SCALE_BOUNDS = [0.1, 10] as const;

export interface RenormalizeResult {
  graph: Graph;
  /** Conv and Gemm layers whose outputs were brought back to their statistics. */
  layers: string[];
}

/**
 * `pruned` (made from `original` by removing channels; values keep their names) with its Convs and Gemms downstream
 * of a removal renormalized. `kept`: per value that lost channels, the original indices of those left.
 */
export async function renormalizeChannels(original: Graph, pruned: Graph, kept: ReadonlyMap<string, readonly number[]>, c: Calibration): Promise<RenormalizeResult> {
  const index = new GraphIndex(pruned);
  const inOriginal = new Set(original.nodes.flatMap((n) => n.outputs));
  const depth = new Map<string, number>();
  const affected = new Set<string>();
  const waves = new Map<number, Node[]>();
  for (const node of pruned.nodes) {
    const inputs = node.inputs.filter((v) => v !== '');
    const d = Math.max(0, ...inputs.map((v) => depth.get(v) ?? 0));
    // An output is affected when an input lost channels, or was computed from one that did.
    const hit = inputs.some((v) => kept.has(v) || affected.has(v));
    const correctable = (node.opType === 'Conv' || isPlainGemm(node)) && hit && ownWeights(pruned, index, node) && inOriginal.has(node.outputs[0]!);
    for (const v of node.outputs) {
      depth.set(v, correctable ? d + 1 : d);
      if (hit) affected.add(v);
    }
    if (correctable) waves.set(d + 1, [...(waves.get(d + 1) ?? []), node]);
  }
  const layers = [...waves.values()].flat();
  if (layers.length === 0) return { graph: pruned, layers: [] };
  const target = await channelMoments(original, layers.map((n) => n.outputs[0]!), c);
  const g = cloneGraph(pruned);
  const clone = new Map(pruned.nodes.map((n, i) => [n, g.nodes[i]!]));
  for (const [, wave] of [...waves].sort(([a], [b]) => a - b)) {
    const now = await channelMoments(g, wave.map((n) => n.outputs[0]!), c);
    for (const node of wave) {
      const value = node.outputs[0]!;
      const want = target.get(value);
      const have = now.get(value);
      if (want && have) rescale(g, clone.get(node)!, have, want, kept.get(value));
    }
  }
  return { graph: g, layers: layers.map((n) => n.name || n.outputs[0]!) };
}

/**
 * A float32 weight initializer read by this layer alone (a shared one would change its other readers
 * too), and a bias of one value per output channel or none (a Gemm's broadcast scalar or matrix C has
 * no per-channel value to shift).
 */
function ownWeights(g: Graph, index: GraphIndex, node: Node): boolean {
  const [weight, bias] = [node.inputs[1], node.inputs[2]];
  const own = (name: string | undefined): boolean => name === undefined || name === '' || (g.initializers.get(name)?.dtype === 'float32' && index.consumersOf(name).length === 1);
  const w = weight !== undefined ? g.initializers.get(weight) : undefined;
  if (!w || !own(weight) || !own(bias)) return false;
  const b = bias ? g.initializers.get(bias) : undefined;
  return !b || b.data.length === outputChannels(node, w.dims);
}

/** Whether the output channels are the weight's columns (Gemm x·W), not its rows (Conv, Gemm x·Wᵀ). */
function byColumns(node: Node): boolean {
  return node.opType === 'Gemm' && (node.attributes['transB']?.value ?? 0) === 0;
}

function outputChannels(node: Node, dims: readonly number[]): number {
  return dims[byColumns(node) ? 1 : 0]!;
}

/** A Gemm computing x·Wᵀ + b or x·W + b with its weight as given (alpha 1, no transposed input). */
function isPlainGemm(node: Node): boolean {
  const a = node.attributes;
  return node.opType === 'Gemm' && (a['transA']?.value ?? 0) === 0 && (a['alpha']?.value ?? 1) === 1 && (a['beta']?.value ?? 1) === 1;
}

function rescale(g: Graph, node: Node, have: { mean: Float64Array; variance: Float64Array }, want: { mean: Float64Array; variance: Float64Array }, keptIndices: readonly number[] | undefined): void {
  const weight = g.initializers.get(node.inputs[1]!)!;
  const out = outputChannels(node, weight.dims);
  const columns = byColumns(node);
  const per = weight.data.length / out;
  const w = Float32Array.from(weight.data as Float32Array);
  const at = (j: number, k: number): number => (columns ? k * out + j : j * per + k);
  const biasName = node.inputs[2] || `${node.inputs[1]}_renormalized_bias`;
  const oldBias = node.inputs[2] ? (g.initializers.get(node.inputs[2])!.data as Float32Array) : new Float32Array(out);
  const b = new Float32Array(out);
  for (let j = 0; j < out; j++) {
    const o = keptIndices?.[j] ?? j;
    const spreadNow = Math.sqrt(have.variance[j]!);
    const spreadWanted = Math.sqrt(want.variance[o]!);
    const s = spreadNow > 1e-12 && spreadWanted > 1e-12 ? Math.min(SCALE_BOUNDS[1], Math.max(SCALE_BOUNDS[0], spreadWanted / spreadNow)) : 1;
    for (let k = 0; k < per; k++) w[at(j, k)]! *= s;
    b[j] = (oldBias[j]! - have.mean[j]!) * s + want.mean[o]!;
  }
  g.initializers.set(node.inputs[1]!, makeTensor('float32', weight.dims, w));
  g.initializers.set(biasName, makeTensor('float32', [out], b));
  if (!node.inputs[2]) node.inputs = [node.inputs[0]!, node.inputs[1]!, biasName];
}
