/**
 * Training a model whose BatchNormalization was folded away (what torch.onnx exports): nothing in it
 * rescales the updates any more, so SGD at ordinary learning rates blows up (a PyTorch ResNet18-CIFAR
 * went from loss 0.17 to 4.8 in four steps at 0.02). BN is put back after every Conv for training (but
 * the one writing the scores, and those on pooled 1×1 features), initialised from the Conv outputs'
 * statistics on training images so the model starts as the same function (insertBatchNorm), and the
 * caller folds it again when writing the model.
 */
import type { ImageSet, Normalization } from '../data/types.js';
import { GraphIndex, type Graph, type Node } from '../onnx/graph.js';
import { insertBatchNorm, untieIdentityWeights, type ChannelMoments } from '../passes/index.js';
import { channelMoments } from '../runtime/channel-stats.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { normalizationOf } from '../zoo/metadata.js';

/** Training images the statistics are measured on, by default. */
export const REINSERT_SAMPLES = 512;

export interface ReinsertOptions {
  /** Default: as trainModel resolves it — the model's own metadata, else CIFAR-10's. */
  normalization?: Normalization;
  /** Named in errors about the model's metadata. */
  file?: string;
  /** Images the statistics are measured on; default REINSERT_SAMPLES. */
  samples?: number;
  seed?: number;
  threads?: number;
  /** Parameters kept as they are (--freeze): a Conv whose weight is one gets no BN, so it computes as before. */
  frozen?: ReadonlySet<string>;
}

export function hasBatchNorm(graph: Graph): boolean {
  return graph.nodes.some((n) => n.opType === 'BatchNormalization');
}

/** Ops that normalize activations. Folding removes BatchNormalization only; the others stay in the file. */
const NORMALIZATIONS = new Set(['BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization']);

/**
 * Whether the model still normalizes its activations. One that does (ConvNeXt's LayerNorms, GroupNorm
 * exported as InstanceNormalization) trains as it is: BN after its Convs would change the architecture.
 * Below opset 17 torch writes LayerNorm out as ops; its mark is a value centred on its own mean,
 * Sub(x, ReduceMean(x)).
 */
export function hasNormalization(graph: Graph): boolean {
  if (graph.nodes.some((n) => NORMALIZATIONS.has(n.opType))) return true;
  const meanOf = new Map(graph.nodes.filter((n) => n.opType === 'ReduceMean').map((n) => [n.outputs[0], n.inputs[0]]));
  return graph.nodes.some((n) => n.opType === 'Sub' && meanOf.get(n.inputs[1]) === n.inputs[0]);
}

/** Ops between a classifier head and the scores: reshaping, averaging, SqueezeNet's ReLU, a final softmax. */
const SCORE_STEPS = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'GlobalAveragePool', 'AveragePool', 'Relu', 'Softmax', 'LogSoftmax']);

/**
 * Convs that write the scores (the first graph output, the one trained on), directly or through
 * SCORE_STEPS — another output, such as a pooled embedding, leaves its Conv a backbone one: a fully convolutional classifier
 * head (pool → 1×1 Conv scoring [N, classes, 1, 1], or 1×1 Conv → [ReLU →] pool, as SqueezeNet's). Such a Conv had no BN before
 * folding — a BN there would normalize the logits themselves — so none is put back.
 */
export function scoringConvs(graph: Graph): Set<Node> {
  const producer = new Map<string, Node>();
  for (const node of graph.nodes) for (const out of node.outputs) if (out) producer.set(out, node);
  const heads = new Set<Node>();
  const scores = graph.outputs[0];
  let node = scores ? producer.get(scores.name) : undefined;
  while (node && SCORE_STEPS.has(node.opType)) node = producer.get(node.inputs[0] ?? '');
  if (node?.opType === 'Conv') heads.add(node);
  return heads;
}

/** Ops that reduce a feature map to one value per channel (the reductions when they leave 1×1: not a spatial attention's mean over channels). */
const POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool']);
const POOLING_WHEN_ONE = new Set(['AveragePool', 'MaxPool', 'ReduceMean', 'ReduceMax']);
/** Ops that keep features pooled: activations, and arithmetic with constants or other pooled values (SiLU's x·σ(x)). */
const POOLED_STEPS = new Set(['Relu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Clip', 'LeakyRelu', 'Tanh', 'Identity', 'Mul', 'Add', 'Sub', 'Div', 'Conv']);

/**
 * Convs that work on pooled features: squeeze-excitation's two 1×1 convs in MobileNetV3, EfficientNet
 * and RegNet-Y, fed by a global pool through activations (and the first conv). BN there would normalize
 * each channel over the batch alone — N values, a different function in training than in evaluation —
 * and such convs never had BN to fold. Found by structure, not by a 1×1 output: a ResNet's last stage at
 * 32×32 input has 1×1 maps too, and its convs had BN.
 */
function pooledConvs(graph: Graph): Set<Node> {
  let types: ReturnType<typeof inferShapes>['types'] | undefined;
  try {
    types = inferShapes(graph).types;
  } catch {
    types = undefined;
  }
  const spatialOne = (value: string): boolean => {
    const shape = types?.get(value)?.shape;
    return !!shape && shape.length > 2 && shape.slice(2).every((d) => d === 1);
  };
  const producer = new Map<string, Node>();
  for (const node of graph.nodes) for (const out of node.outputs) if (out) producer.set(out, node);
  const memo = new Map<string, boolean>();
  const isPooled = (value: string): boolean => {
    const known = memo.get(value);
    if (known !== undefined) return known;
    memo.set(value, false); // cycles cannot occur in a valid graph; this also bounds the walk
    const node = producer.get(value);
    let pooled = false;
    if (node && (POOLS.has(node.opType) || (POOLING_WHEN_ONE.has(node.opType) && spatialOne(value)))) pooled = true;
    else if (node && POOLED_STEPS.has(node.opType)) {
      // Conv: its data input; the others: every input that is not a constant.
      const inputs = node.opType === 'Conv' ? [node.inputs[0] ?? ''] : node.inputs.filter((v) => v && !graph.initializers.has(v) && producer.get(v)?.opType !== 'Constant');
      pooled = inputs.length > 0 && inputs.every(isPooled);
    }
    memo.set(value, pooled);
    return pooled;
  };
  return new Set(graph.nodes.filter((n) => n.opType === 'Conv' && isPooled(n.inputs[0] ?? '')));
}

export interface Reinsertion {
  graph: Graph;
  /** BatchNormalization nodes put in. */
  inserted: number;
  samples: number;
  /** The Convs of the model, and those left without BN and why. */
  convs: number;
  skipped: { classifier: number; pooled: number; frozen: number };
  /**
   * A model that normalizes with something else (GroupNorm, LayerNorm) gets no BN: its Convs (classifier
   * and pooled ones aside) that go straight into an activation — where a BN folded at export would have been.
   */
  unnormalized?: number;
  /** Every Conv given BN had a folded bias of exactly 0 (an untrained export): BN went in as PyTorch initializes it. */
  untrained?: boolean;
}

/** Activation functions: where a Conv → BN → activation leaves Conv → activation once BN is folded. */
const ACTIVATIONS = new Set(['Relu', 'Clip', 'LeakyRelu', 'PRelu', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Elu', 'Selu', 'Celu', 'Tanh', 'Softplus', 'Mish', 'Gelu']);

/**
 * A Conv that reads like one a BatchNorm was folded into: its output goes straight into an activation
 * (a SiLU's Sigmoid and Mul included). One feeding a norm, an Add (a residual's last, ConvNeXt's
 * downsampling) or a reshape (a patch embedding) is what its design made it.
 */
function foldedLooking(conv: Node, index: GraphIndex): boolean {
  const readers = index.consumersOf(conv.outputs[0]!);
  return readers.some((r) => ACTIVATIONS.has(r.opType)) && readers.every((r) => ACTIVATIONS.has(r.opType) || r.opType === 'Mul');
}

/** `graph` with trainable BN after its Convs when it has no normalization at all; otherwise `graph` itself. */
export async function withTrainingBatchNorm(source: Graph, images: ImageSet, o: ReinsertOptions): Promise<Reinsertion> {
  // Untied first: a fresh export's folded zero biases are one tensor behind Identity nodes, and a
  // Conv whose bias is computed would get no BN.
  const graph = untieIdentityWeights(source);
  const samples = Math.min(o.samples ?? REINSERT_SAMPLES, images.labels.length);
  const convs = graph.nodes.filter((n) => n.opType === 'Conv' && n.outputs[0]);
  const none = { graph, inserted: 0, samples: 0, convs: convs.length, skipped: { classifier: 0, pooled: 0, frozen: 0 } };
  const heads = scoringConvs(graph);
  const pooled = pooledConvs(graph);
  if (hasNormalization(graph)) {
    const index = new GraphIndex(graph);
    return { ...none, unnormalized: convs.filter((n) => !heads.has(n) && !pooled.has(n) && foldedLooking(n, index)).length };
  }
  const skipped = {
    classifier: convs.filter((n) => heads.has(n)).length,
    pooled: convs.filter((n) => !heads.has(n) && pooled.has(n)).length,
    frozen: convs.filter((n) => !heads.has(n) && !pooled.has(n) && o.frozen?.has(n.inputs[1] ?? '')).length,
  };
  const convOutputs = convs.filter((n) => !heads.has(n) && !pooled.has(n) && !o.frozen?.has(n.inputs[1] ?? '')).map((n) => n.outputs[0]!);
  if (convOutputs.length === 0) return { ...none, skipped };
  // An untrained model exported with BN folded: a fresh BN (γ = 1, β = 0, mean 0, variance 1) folds into
  // a bias of exactly 0, which a trained one never is. Its BN goes back as PyTorch initializes it: kept as
  // the same function, each layer's γ is the scale a random layer happens to have (a trial's fresh
  // export went from loss 2.303 to 2.277 in 4 epochs where PyTorch reached 1.87).
  const receiving = new Set(convOutputs);
  const untrained = convs.filter((n) => receiving.has(n.outputs[0]!)).every((n) => zeroBias(graph, n));
  const measure = (g: Graph, values: readonly string[]): Promise<Map<string, ChannelMoments>> => channelMoments(g, values, {
    images,
    normalization: o.normalization ?? normalizationOf(graph, o.file),
    samples,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
  });
  const out = untrained ? await freshBatchNorm(graph, convOutputs, measure) : insertBatchNorm(graph, await measure(graph, convOutputs), {});
  return { graph: out, inserted: out.nodes.length - graph.nodes.length, samples, convs: convs.length, skipped, ...(untrained ? { untrained } : {}) };
}

/**
 * Fresh BN (γ = 1, β = 0) normalizes every layer, so each one's running statistics must be those of its
 * input in the network with the BNs before it in place: measured Conv by Conv, in graph order. Measured on
 * the export instead, the second BN on normalized the already-normalized values again with the export's
 * statistics (a trial's fresh MobileNet scored a loss of 2.7e19 in eval mode before its first step, and
 * blew up a short fine-tune). ORT computes only what a measured value needs: about half the network per Conv.
 */
async function freshBatchNorm(graph: Graph, convOutputs: readonly string[], measure: (g: Graph, values: readonly string[]) => Promise<Map<string, ChannelMoments>>): Promise<Graph> {
  const moments = new Map<string, ChannelMoments>();
  let current = graph;
  for (const value of convOutputs) {
    const m = (await measure(current, [value])).get(value);
    if (!m) continue;
    moments.set(value, m);
    current = insertBatchNorm(graph, moments, { freshAffine: true });
  }
  return current;
}

/** A Conv whose bias is stored and all zeros (what a fresh BN folds into). */
function zeroBias(graph: Graph, conv: Node): boolean {
  const bias = graph.initializers.get(conv.inputs[2] ?? '');
  return bias?.dtype === 'float32' && bias.data.length > 0 && (bias.data as Float32Array).every((v) => v === 0);
}

/** "after 15 of 20 Conv(s) (none after the classifier's, …)": what a re-insertion did, for the log. */
export function reinsertedAfter(r: Reinsertion): string {
  const why = [
    r.skipped.classifier ? `${r.skipped.classifier} writing the scores` : '',
    r.skipped.pooled ? `${r.skipped.pooled} on pooled features (squeeze-excitation)` : '',
    r.skipped.frozen ? `${r.skipped.frozen} frozen` : '',
  ].filter(Boolean);
  // Convs that insertBatchNorm passes over (a computed bias, a BN already there) are the rest.
  return `after ${r.inserted} of ${r.convs} Conv(s)${why.length ? ` (none after ${why.join(', ')})` : ''}`;
}

/**
 * A model that normalizes with GroupNorm or LayerNorm trains as it is; where some of its Convs reach no
 * normalization and it has no BatchNormalization left, BN may have been folded into them at export —
 * which a mixed BN + GroupNorm model cannot be given back, so it is said.
 */
export function unnormalizedNote(r: Reinsertion, graph: Graph): string | undefined {
  if (!r.unnormalized || hasBatchNorm(graph)) return undefined;
  return `note: the model normalizes with GroupNorm or LayerNorm, so no BatchNormalization is re-inserted for training; ${r.unnormalized} of its ${r.convs} Conv(s) go straight into an activation, with no norm between (where a folded BN leaves a Conv; one before a residual Add may have lost its BN too) — ` +
    'if BN was folded into them at export, they train without it: export with BN kept (torch.onnx.export(..., training=torch.onnx.TrainingMode.PRESERVE)) to train it';
}
