import { inputError } from '../errors.js';
import type { Graph, Node } from './graph.js';

/** Values available before any node runs: graph inputs and initializers. */
export function sourceValues(graph: Graph): Set<string> {
  const names = new Set<string>(graph.initializers.keys());
  for (const v of graph.inputs) names.add(v.name);
  return names;
}

/**
 * Nodes in an order where every input is produced before it is read (Kahn's algorithm, stable: ties
 * keep file order). Throws a SlimError naming the nodes on a cycle, a value read but never produced,
 * or a value produced twice.
 */
export function topologicalOrder(graph: Graph): Node[] {
  const available = sourceValues(graph);
  const producerOf = new Map<string, number>();
  graph.nodes.forEach((node, i) => {
    for (const out of node.outputs) {
      if (!out) continue;
      const previous = producerOf.get(out);
      if (previous !== undefined || available.has(out)) {
        const other = previous !== undefined ? `node '${graph.nodes[previous]!.name}'` : 'a graph input or initializer';
        throw inputError({
          where: `node '${node.name}' (${node.opType})`,
          problem: `output '${out}' is also produced by ${other}; ONNX values must have exactly one producer`,
          fix: 're-export the model or rename one of the values',
        });
      }
      producerOf.set(out, i);
    }
  });

  // waiting[i] = how many of node i's inputs are not yet produced; readers[v] = nodes waiting for v.
  const waiting = new Array<number>(graph.nodes.length).fill(0);
  const readers = new Map<string, number[]>();
  graph.nodes.forEach((node, i) => {
    for (const input of new Set(node.inputs)) {
      if (!input || available.has(input)) continue;
      if (!producerOf.has(input)) {
        throw inputError({
          where: `node '${node.name}' (${node.opType})`,
          problem: `input '${input}' is not produced by any node, graph input or initializer`,
          fix: 'the file is incomplete or was edited by hand; re-export it',
        });
      }
      waiting[i]!++;
      const list = readers.get(input);
      if (list) list.push(i);
      else readers.set(input, [i]);
    }
  });

  // A min-heap would give exact file order; a sorted ready list is enough at model sizes.
  const ready: number[] = [];
  waiting.forEach((w, i) => w === 0 && ready.push(i));
  const order: Node[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => b - a);
    const i = ready.pop()!;
    const node = graph.nodes[i]!;
    order.push(node);
    for (const out of node.outputs) {
      for (const reader of readers.get(out) ?? []) {
        if (--waiting[reader]! === 0) ready.push(reader);
      }
    }
  }
  if (order.length < graph.nodes.length) {
    const stuck = graph.nodes.filter((_, i) => waiting[i]! > 0).map((n) => `'${n.name}'`);
    throw inputError({
      where: `nodes ${stuck.slice(0, 5).join(', ')}${stuck.length > 5 ? ` and ${stuck.length - 5} more` : ''}`,
      problem: 'the graph has a cycle; ONNX graphs must be acyclic',
      fix: 're-export the model',
    });
  }
  return order;
}

/** Give every node a non-empty, unique name (exporters often leave names empty). Returns a new node list. */
export function uniqueNodeNames(nodes: readonly Node[]): Node[] {
  const taken = new Set<string>(nodes.map((n) => n.name).filter(Boolean));
  const kept = new Set<string>();
  const counters = new Map<string, number>();
  const fresh = (base: string): string => {
    let k = counters.get(base) ?? 0;
    let name: string;
    do name = `${base}_${k++}`;
    while (taken.has(name));
    counters.set(base, k);
    taken.add(name);
    return name;
  };
  return nodes.map((node) => {
    // The first node holding a name keeps it; later duplicates and empty names get fresh ones.
    const name = node.name && !kept.has(node.name) ? node.name : fresh(node.name || node.opType);
    kept.add(name);
    return name === node.name ? node : { ...node, name };
  });
}
