import { cloneGraph, GraphIndex, type Graph, type Node } from '../onnx/graph.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { freshName, valueNames } from './rewrite.js';

/** Per-channel statistics of one Conv output, measured on calibration images. */
export interface ChannelMoments {
  mean: Float64Array;
  variance: Float64Array;
}

const EPSILON = 1e-5;

/**
 * The inverse of BN folding, for training a model exported with its BatchNormalization folded away (what
 * torch.onnx writes): after every Conv whose output has measured moments and is not already normalized,
 * insert a BatchNormalization that is the identity at insertion — γ = sqrt(var + ε), β = mean, running
 * statistics = the measured ones — and move the Conv's bias into β (a bias before BN is cancelled by the
 * batch mean, as in PyTorch's conv-without-bias + BN). Eval output is unchanged up to rounding; in train
 * mode the batch statistics normalize every layer again, which is what keeps SGD stable at fine-tuning
 * learning rates (a folded net has nothing rescaling its updates). `foldBatchNorm` undoes it.
 * `freshAffine` sets γ = 1, β = 0 instead (the running statistics stay the measured ones, which must then be
 * measured with the earlier fresh BNs in place: engine/reinsert-batchnorm.ts).
 */
export function insertBatchNorm(graph: Graph, moments: ReadonlyMap<string, ChannelMoments>, o: { freshAffine?: boolean } = {}): Graph {
  const g = cloneGraph(graph);
  const index = new GraphIndex(g);
  const taken = valueNames(g);
  const nodes: Node[] = [];
  const droppedBiases: string[] = [];
  for (const node of g.nodes) {
    nodes.push(node);
    const out = node.outputs[0];
    const stats = out ? moments.get(out) : undefined;
    if (node.opType !== 'Conv' || !out || !stats) continue;
    if (index.consumersOf(out).some((c) => c.opType === 'BatchNormalization')) continue;
    const weight = g.initializers.get(node.inputs[1] ?? '');
    const channels = weight?.dims[0];
    if (weight?.dtype !== 'float32' || channels !== stats.mean.length || channels !== stats.variance.length) continue;
    const biasName = node.inputs[2];
    const bias = biasName ? g.initializers.get(biasName) : undefined;
    if (biasName && bias?.dtype !== 'float32') continue; // a computed bias stays where it is

    const gamma = new Float32Array(channels);
    const beta = new Float32Array(channels);
    const runningMean = new Float32Array(channels);
    const runningVar = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const variance = Math.max(0, stats.variance[c]!);
      // freshAffine: γ = 1, β = 0, as PyTorch initializes BN — for an untrained model, whose function is
      // not worth keeping, and whose measured scales would shrink layer by layer.
      gamma[c] = o.freshAffine ? 1 : Math.sqrt(variance + Math.fround(EPSILON));
      beta[c] = o.freshAffine ? 0 : stats.mean[c]!;
      // The Conv loses its bias b, so its output's mean becomes mean − b.
      runningMean[c] = stats.mean[c]! - (bias ? (bias as Tensor<'float32'>).data[c]! : 0);
      runningVar[c] = variance;
    }
    const base = node.name || out;
    const params = [['scale', gamma], ['bias', beta], ['mean', runningMean], ['var', runningVar]].map(([suffix, data]) => {
      const name = freshName(taken, `${base}.bn.${suffix as string}`);
      g.initializers.set(name, float32([channels], data as Float32Array));
      return name;
    });
    const preNorm = freshName(taken, `${out}.prebn`);
    node.outputs = [preNorm, ...node.outputs.slice(1)];
    if (biasName) {
      node.inputs = node.inputs.slice(0, 2);
      droppedBiases.push(biasName);
    }
    nodes.push({
      name: freshName(taken, `${base}.bn`),
      opType: 'BatchNormalization',
      domain: '',
      inputs: [preNorm, ...params],
      outputs: [out],
      attributes: { epsilon: { type: 'float', value: EPSILON }, momentum: { type: 'float', value: 0.9 } },
    });
  }
  g.nodes = nodes;
  // Biases no node reads any more go with them.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const name of droppedBiases) if (!read.has(name) && !g.inputs.some((v) => v.name === name)) g.initializers.delete(name);
  return g;
}
