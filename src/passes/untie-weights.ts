import { cloneGraph, type Graph, type Node } from '../onnx/graph.js';
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
 * Tensors are immutable, so the copies share their data until a later step replaces one.
 */
export function untieIdentityWeights(graph: Graph): Graph {
  if (!graph.nodes.some((n) => isIdentityOfInitializer(graph, n))) return graph;
  const g = cloneGraph(graph);
  const declared = new Set(g.inputs.map((v) => v.name));
  const doomed = new Set<Node>();
  for (const node of g.nodes) {
    if (!isIdentityOfInitializer(g, node)) continue;
    const y = node.outputs[0]!;
    // A run-time overridable weight (also a graph input) or a weight that is the model's output stays as written.
    if (declared.has(node.inputs[0]!) || isGraphOutput(g, y)) continue;
    g.initializers.set(y, g.initializers.get(node.inputs[0]!)!);
    g.valueInfo.delete(y);
    doomed.add(node);
  }
  g.nodes = g.nodes.filter((n) => !doomed.has(n));
  return g;
}

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
  description: "give each parameter torch.onnx merged into an Identity of another its own initializer again",
  run: untieIdentityWeights,
};
