/**
 * Transfer learning: a pretrained network's classifier swapped for a fresh one with another class
 * count (torchvision's `model.fc = nn.Linear(in, k)`), everything before it kept as it is. The head is
 * the last weighted layer on the way back from the scores: a Gemm, a MatMul (+ Add bias) or a 1×1 Conv
 * (SqueezeNet), found behind what only reshapes, pools or squashes the scores. Pure.
 */
import { SlimError } from '../errors.js';
import { cloneGraph, GraphIndex, type Graph, type Node } from '../onnx/graph.js';
import { float32, int64, numel, toNumbers, type Tensor } from '../onnx/tensor.js';
import { Random } from '../util/random.js';
import { freshName, valueNames } from './rewrite.js';

/** Ops between the head and the scores that keep one score per class (or only reshape them). */
const PASS_THROUGH = new Set([
  'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'Softmax', 'LogSoftmax', 'Sigmoid', 'Relu',
  'GlobalAveragePool', 'GlobalMaxPool', 'AveragePool', 'MaxPool', 'ReduceMean',
]);

export interface ClassifierHead {
  /** The layer writing the scores. */
  node: string;
  kind: 'Gemm' | 'MatMul' | 'Conv';
  weight: string;
  /**
   * The bias: the Gemm's or Conv's third input, or the constant of the Add behind a MatMul. torch.onnx
   * may pass it through an Identity of an equal tensor elsewhere (it stores equal tensors once).
   */
  bias?: string;
  /** Features in (fan-in of one score) and scores out. */
  inFeatures: number;
  classes: number;
  /** Nodes from the head's output to the graph's first output, in order (the reshapes, pools, ...). */
  tail: string[];
  /** Positions in graph.nodes of the layer and of the tail: names may be empty or repeat in a file. */
  at: number;
  tailAt: number[];
}

function problem(text: string, fix: string): SlimError {
  return new SlimError({ where: 'classifier head', problem: text, fix });
}

function constant(graph: Graph, name: string | undefined): Tensor | undefined {
  return name ? graph.initializers.get(name) : undefined;
}

/** The classifier writing `graph`'s first output, or a SlimError saying what stands in the way. */
export function findClassifierHead(graph: Graph): ClassifierHead {
  const index = new GraphIndex(graph);
  const output = graph.outputs[0];
  if (!output) throw problem('the model has no output', 'export the model with its class scores as the first output');
  const tail: Node[] = [];
  let node = index.producer.get(output.name);
  while (node && PASS_THROUGH.has(node.opType)) {
    tail.unshift(node);
    node = node.inputs[0] ? index.producer.get(node.inputs[0]) : undefined;
  }
  const fix = 'the head must be a Linear (Gemm or MatMul) or a 1×1 Conv behind the scores, with constant weights';
  if (!node) throw problem(`nothing weighted writes the scores '${output.name}'`, fix);
  const tailNames = tail.map((n) => n.name);
  const position = (n: Node): number => graph.nodes.indexOf(n);
  const located = { at: position(node), tailAt: tail.map(position) };

  if (node.opType === 'Gemm') {
    const w = constant(graph, node.inputs[1]);
    if (!w || w.dims.length !== 2) throw problem(`Gemm '${node.name}' has no constant 2-D weight`, fix);
    const transB = node.attributes['transB']?.value === 1;
    const [classes, inFeatures] = transB ? [w.dims[0]!, w.dims[1]!] : [w.dims[1]!, w.dims[0]!];
    const bias = node.inputs[2] || undefined;
    return { node: node.name, kind: 'Gemm', weight: node.inputs[1]!, ...(bias ? { bias } : {}), inFeatures, classes, tail: tailNames, ...located };
  }
  if (node.opType === 'Add') {
    // MatMul + Add: the bias is the Add's constant, the weight the MatMul's.
    const biasSlot = node.inputs.findIndex((v) => constant(graph, v) !== undefined);
    const other = node.inputs[1 - biasSlot];
    const matmul = biasSlot >= 0 && other ? index.producer.get(other) : undefined;
    const w = matmul?.opType === 'MatMul' ? constant(graph, matmul.inputs[1]) : undefined;
    if (!matmul || !w || w.dims.length !== 2) throw problem(`Add '${node.name}' writes the scores, but not as the bias of a MatMul with a constant weight`, fix);
    const bias = constant(graph, node.inputs[biasSlot])!;
    if (numel(bias.dims) !== w.dims[1]) throw problem(`Add '${node.name}' adds ${numel(bias.dims)} values to ${w.dims[1]} scores`, fix);
    return { node: matmul.name, kind: 'MatMul', weight: matmul.inputs[1]!, bias: node.inputs[biasSlot]!, inFeatures: w.dims[0]!, classes: w.dims[1]!, tail: [node.name, ...tailNames], at: position(matmul), tailAt: [position(node), ...located.tailAt] };
  }
  if (node.opType === 'MatMul') {
    const w = constant(graph, node.inputs[1]);
    if (!w || w.dims.length !== 2) throw problem(`MatMul '${node.name}' has no constant 2-D weight`, fix);
    return { node: node.name, kind: 'MatMul', weight: node.inputs[1]!, inFeatures: w.dims[0]!, classes: w.dims[1]!, tail: tailNames, ...located };
  }
  if (node.opType === 'Conv') {
    const w = constant(graph, node.inputs[1]);
    const group = node.attributes['group']?.value ?? 1;
    if (!w || w.dims.length < 3) throw problem(`Conv '${node.name}' has no constant weight`, fix);
    if (group !== 1) throw problem(`Conv '${node.name}' is grouped (group ${String(group)}): its outputs are not one score per class over all features`, fix);
    const bias = node.inputs[2] || undefined;
    const inFeatures = numel(w.dims.slice(1));
    return { node: node.name, kind: 'Conv', weight: node.inputs[1]!, ...(bias ? { bias } : {}), inFeatures, classes: w.dims[0]!, tail: tailNames, ...located };
  }
  throw problem(`the scores come from ${node.opType} '${node.name}', not from a classifier layer`, fix);
}

export interface NewHead {
  graph: Graph;
  /** The head as it was, and the names of the fresh weight and bias. */
  replaced: ClassifierHead;
  weight: string;
  bias?: string;
}

/**
 * `graph` with its classifier replaced by a fresh one scoring `classes` classes, initialized as PyTorch
 * initializes a new nn.Linear / nn.Conv2d: weight and bias uniform in ±1/√fan_in (seeded). Reshape
 * targets behind the head that spell out the old class count get the new one; the first output is
 * declared with the new count and intermediate types behind the head are dropped (shape inference
 * redoes them).
 */
export function replaceClassifierHead(graph: Graph, options: { classes: number; seed: number }): NewHead {
  const head = findClassifierHead(graph);
  const { classes } = options;
  const g = cloneGraph(graph);
  const index = new GraphIndex(g);
  const taken = valueNames(g);
  const rng = new Random(options.seed);
  const bound = 1 / Math.sqrt(head.inFeatures);
  const uniform = (dims: number[]): Tensor<'float32'> =>
    float32(dims, Array.from({ length: numel(dims) }, () => rng.uniform(-bound, bound)));
  // A weight read only by the head keeps its name (checkpoints and logs stay readable); a shared one is
  // left to its other readers, and a value some node computes (an Identity) is not overwritten.
  const store = (old: string, value: Tensor): string => {
    const name = index.consumersOf(old).length === 1 && g.initializers.has(old) ? old : freshName(taken, `${old}_new`);
    g.initializers.set(name, value);
    return name;
  };
  const layer = g.nodes[head.at]!;
  const oldWeight = g.initializers.get(head.weight)!;
  const weightDims = head.kind === 'Conv' ? [classes, ...oldWeight.dims.slice(1)]
    : head.kind === 'MatMul' ? [head.inFeatures, classes]
      : layer.attributes['transB']?.value === 1 ? [classes, head.inFeatures] : [head.inFeatures, classes];
  const weight = store(head.weight, uniform(weightDims));
  layer.inputs[1] = weight;
  let bias: string | undefined;
  if (head.bias) {
    const old = g.initializers.get(head.bias);
    // Same rank as before ([k] or a broadcast [1, k]), the class axis resized.
    const dims = old ? old.dims.map((d) => (d === head.classes ? classes : d)) : [classes];
    bias = store(head.bias, uniform(numel(dims) === classes ? dims : [classes]));
    const reader = head.kind === 'MatMul' ? g.nodes[head.tailAt[0]!]! : layer;
    reader.inputs = reader.inputs.map((v) => (v === head.bias ? bias! : v));
  }
  const replaced: string[] = [];
  for (const at of head.tailAt) {
    const node = g.nodes[at]!;
    for (const out of node.outputs) g.valueInfo.delete(out);
    if (node.opType === 'Reshape') {
      // The target: an initializer, or a Constant node (torch.onnx writes both).
      const producer = index.producer.get(node.inputs[1] ?? '');
      const attr = producer?.opType === 'Constant' ? producer.attributes['value'] : undefined;
      const target = constant(g, node.inputs[1]) ?? (attr?.type === 'tensor' ? attr.value : undefined);
      if (target && toNumbers(target).includes(head.classes)) {
        // A target of its own: the old one may be shared (or a Constant node's output).
        const name = freshName(taken, `${node.inputs[1]!}_classes`);
        replaced.push(node.inputs[1]!);
        g.initializers.set(name, int64(target.dims, toNumbers(target).map((d) => (d === head.classes ? classes : d))));
        node.inputs[1] = name;
      } else if (!target) {
        throw problem(`Reshape '${node.name}' behind the classifier takes a computed shape`, 'export the model with a Flatten (or a constant Reshape target) behind its classifier');
      }
    }
  }
  for (const out of layer.outputs) g.valueInfo.delete(out);
  declareClassCount(g, classes);
  // What fed the old head and nothing else goes: its weights, and an Identity that passed one through.
  for (let value = head.bias; value !== undefined; ) {
    const feeder = index.producer.get(value);
    const stillRead = g.nodes.some((n) => n.inputs.includes(value!)) || g.outputs.some((v) => v.name === value);
    if (!feeder || feeder.opType !== 'Identity' || stillRead) break;
    g.nodes = g.nodes.filter((n) => n !== feeder);
    value = feeder.inputs[0];
    if (value && g.initializers.has(value) && !g.nodes.some((n) => n.inputs.includes(value!))) g.initializers.delete(value);
  }
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const old of [head.weight, head.bias, ...replaced]) if (old && !read.has(old)) g.initializers.delete(old);
  return { graph: g, replaced: head, weight, ...(bias ? { bias } : {}) };
}

/** Declares `classes` as the first output's dim 1, when the output states it (in place). */
export function declareClassCount(graph: Graph, classes: number): void {
  const output = graph.outputs[0];
  if (output?.shape && output.shape.length >= 2) output.shape = [output.shape[0]!, classes, ...output.shape.slice(2)];
}

/** The weight and bias of the layer that writes the scores (findClassifierHead). */
export function classifierParameters(graph: Graph): string[] {
  const head = findClassifierHead(graph);
  return [head.weight, ...(head.bias ? [head.bias] : [])];
}
