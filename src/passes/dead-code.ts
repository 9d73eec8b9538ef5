import { cloneGraph, type Graph } from '../onnx/graph.js';
import { topologicalOrder } from '../onnx/topology.js';
import type { Pass } from './pass.js';

/**
 * Drop nodes none of whose outputs reach a graph output, then initializers and value_info nobody reads.
 * Walks the topological order backwards once, so chains of dead nodes go in one run.
 */
export function eliminateDeadCode(graph: Graph): Graph {
  const g = cloneGraph(graph);
  const live = new Set(g.outputs.map((o) => o.name));
  const kept = new Set<object>();
  const order = topologicalOrder(g);
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    if (!node.outputs.some((o) => o && live.has(o))) continue;
    kept.add(node);
    for (const input of node.inputs) if (input) live.add(input);
  }
  g.nodes = g.nodes.filter((n) => kept.has(n));
  for (const name of [...g.initializers.keys()]) {
    if (!live.has(name)) g.initializers.delete(name);
  }
  // IR < 4 files list initializers as graph inputs too; a dropped initializer leaves the input list with it.
  g.inputs = g.inputs.filter((v) => live.has(v.name) || !graph.initializers.has(v.name));
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  for (const name of [...g.valueInfo.keys()]) if (!produced.has(name)) g.valueInfo.delete(name);
  return g;
}

export const deadCodePass: Pass = {
  name: 'eliminate-dead-code',
  description: 'remove nodes whose outputs reach no graph output, and unused initializers',
  run: eliminateDeadCode,
};
