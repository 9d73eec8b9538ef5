import { cloneGraph, type Graph, type Node } from '../onnx/graph.js';
import type { Tensor } from '../onnx/tensor.js';
import { constantValue } from './constants.js';
import type { Pass } from './pass.js';
import { isGraphOutput } from './rewrite.js';

/**
 * torch.onnx (1.12 and later) stores parameters whose values are equal at export time once, and names
 * the others through Identity nodes: in a freshly initialized model every BatchNorm γ and running
 * variance (all ones) becomes `Identity(layer4.0.bn1.weight)`, every folded zero bias one shared zero
 * tensor. For inference that is the same function, but they are different parameters: the training
 * engine would freeze them (it trains initializers, not computed values) or update one through
 * another, and pruning must slice each layer's own. This pass gives every Identity of an initializer
 * its own initializer under the Identity's output name (the parameter's own name) and drops the node.
 * Tensors are immutable, so the copies share their data until a later step replaces one. A parameter
 * read through a reshaping op (viewOfInitializer) becomes an initializer of that shape in the same way.
 */
export function untieIdentityWeights(graph: Graph): Graph {
  if (!graph.nodes.some((n) => isIdentityOfInitializer(graph, n) || viewOfInitializer(graph, n))) return graph;

  const g = cloneGraph(graph);
  const declared = new Set(g.inputs.map((v) => v.name));
  const doomed = new Set<Node>();
  const renamed = new Map<string, string>();
  for (const node of g.nodes) {
    const identity = isIdentityOfInitializer(g, node);
    const view = identity ? undefined : viewOfInitializer(g, node);
    if (!identity && !view) continue;
    const x = node.inputs[0]!;
    const y = node.outputs[0]!;
    // A run-time overridable weight (also a graph input) or a weight that is the model's output stays as written.
    if (declared.has(x) || isGraphOutput(g, y)) continue;
    const tensor = g.initializers.get(x)!;
    if (view && readers(g, x) === 1) {
      // The parameter's only use: it takes the view's shape under its own name (a1.weight, not onnx::PRelu_12).
      g.initializers.set(x, { ...tensor, dims: view });
      renamed.set(y, x);
    } else {
      g.initializers.set(y, view ? { ...tensor, dims: view } : tensor);
      g.valueInfo.delete(y);
    }
    doomed.add(node);
  }
  // The axes or shape a removed view read from a Constant node go with it when nothing else reads them.
  const freed = new Set([...doomed].flatMap((n) => n.inputs.slice(1)));
  g.nodes = g.nodes.filter((n) => !doomed.has(n));
  const stillRead = new Set(g.nodes.flatMap((n) => n.inputs));
  g.nodes = g.nodes.filter((n) => !(n.opType === 'Constant' && freed.has(n.outputs[0]!) && !stillRead.has(n.outputs[0]!) && !isGraphOutput(g, n.outputs[0]!)));
  if (renamed.size) for (const n of g.nodes) n.inputs = n.inputs.map((v) => renamed.get(v) ?? v);
  for (const y of renamed.keys()) g.valueInfo.delete(y);
  return g;
}

function readers(graph: Graph, value: string): number {
  return graph.nodes.reduce((count, n) => count + n.inputs.filter((v) => v === value).length, 0);
}

/**
 * The dims of a parameter torch.onnx reads through a reshaping op when it does not fold constants
 * (`do_constant_folding=False`: a per-channel PReLU slope is `Unsqueeze(a1.weight, [1, 2])`), or
 * undefined for any other node. Such a parameter is the view's shape; the data does not move.
 */
function viewOfInitializer(graph: Graph, node: Node): number[] | undefined {
  if (!RESHAPING_OPS.has(node.opType) || (node.domain !== '' && node.domain !== 'ai.onnx') || node.outputs.length !== 1 || !node.outputs[0]) return undefined;
  const x = graph.initializers.get(node.inputs[0] ?? '');
  // The axes or shape: an initializer, or a Constant node (what torch.onnx writes without constant folding).
  const constant = (v: string): Tensor | undefined => {
    const held = graph.initializers.get(v);
    if (held) return held;
    const producer = graph.nodes.find((n) => n.outputs[0] === v);
    return producer?.opType === 'Constant' ? constantValue(producer) : undefined;
  };
  if (!x || graph.initializers.has(node.outputs[0]) || !node.inputs.slice(1).every((v) => !v || constant(v))) return undefined;
  const ints = (slot: number): number[] | undefined => {
    const t = node.inputs[slot] ? constant(node.inputs[slot]) : undefined;
    return t && (t.dtype === 'int64' || t.dtype === 'int32') ? Array.from(t.data as ArrayLike<number | bigint>, Number) : undefined;
  };
  const attrInts = (name: string): number[] | undefined => {
    const a = node.attributes[name];
    return a?.type === 'ints' ? [...a.value] : undefined;
  };
  const dims = [...x.dims];
  const size = dims.reduce((a, b) => a * b, 1);
  switch (node.opType) {
    case 'Unsqueeze': {
      const axes = ints(1) ?? attrInts('axes');
      if (!axes) return undefined;
      const rank = dims.length + axes.length;
      const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      return Array.from({ length: rank }, (_, i) => (at.has(i) ? 1 : dims.shift()!));
    }
    case 'Squeeze': {
      const axes = ints(1) ?? attrInts('axes');
      const at = new Set((axes ?? dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + dims.length : a)));
      return dims.filter((_, i) => !at.has(i));
    }
    case 'Reshape': {
      const shape = ints(1);
      const allowZero = node.attributes['allowzero']?.type === 'int' && node.attributes['allowzero'].value === 1;
      if (!shape) return undefined;
      const out = shape.map((d, i) => (d === 0 && !allowZero ? dims[i] ?? -2 : d));
      const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const free = out.filter((d) => d === -1).length;
      if (out.includes(-2) || free > 1 || known <= 0 || size % known !== 0) return undefined;
      return out.map((d) => (d === -1 ? size / known : d));
    }
    case 'Flatten': {
      const a = node.attributes['axis'];
      const axisRaw = a?.type === 'int' ? a.value : 1;
      const axis = axisRaw < 0 ? axisRaw + dims.length : axisRaw;
      const outer = dims.slice(0, axis).reduce((p, d) => p * d, 1);
      return [outer, size / outer];
    }
  }
  return undefined;
}

/** Ops that give a tensor another shape and the same data: a parameter read through one is that parameter. */
export const RESHAPING_OPS: ReadonlySet<string> = new Set(['Unsqueeze', 'Squeeze', 'Reshape', 'Flatten']);

function isIdentityOfInitializer(graph: Graph, node: Node): boolean {
  return (
    node.opType === 'Identity' &&
    (node.domain === '' || node.domain === 'ai.onnx') &&
    node.inputs.length === 1 &&
    graph.initializers.has(node.inputs[0]!) &&
    node.outputs.length === 1 &&
    !!node.outputs[0] &&
    !graph.initializers.has(node.outputs[0])
  );
}

export const untieWeightsPass: Pass = {
  name: 'untie-weights',
  description: "give each parameter torch.onnx merged into an Identity of another its own initializer again, and one it reads through a reshape its shape",
  run: untieIdentityWeights,
};
