import type { Graph, Node } from '../onnx/graph.js';

/** Small graph-surgery helpers shared by passes. They mutate only the (cloned) graph they are given. */

/** Rename a value everywhere it appears: node inputs and outputs, graph outputs and value_info. */
export function renameValue(graph: Graph, from: string, to: string): void {
  for (const node of graph.nodes) {
    node.inputs = node.inputs.map((v) => (v === from ? to : v));
    node.outputs = node.outputs.map((v) => (v === from ? to : v));
  }
  for (const o of graph.outputs) if (o.name === from) o.name = to;
  const info = graph.valueInfo.get(from);
  if (info) {
    graph.valueInfo.delete(from);
    graph.valueInfo.set(to, { ...info, name: to });
  }
}

/** Point every reader of `from` at `to` (graph outputs are left alone). */
export function replaceUses(graph: Graph, from: string, to: string): void {
  for (const node of graph.nodes) node.inputs = node.inputs.map((v) => (v === from ? to : v));
}

/** Every value name in use: initializers, graph inputs/outputs, node inputs and outputs. */
export function valueNames(graph: Graph): Set<string> {
  const names = new Set<string>(graph.initializers.keys());
  for (const v of graph.inputs) names.add(v.name);
  for (const v of graph.outputs) names.add(v.name);
  for (const n of graph.nodes) {
    for (const v of n.inputs) if (v) names.add(v);
    for (const v of n.outputs) if (v) names.add(v);
  }
  return names;
}

/** A value name based on `base` that is not yet taken; records it in `taken`. */
export function freshName(taken: Set<string>, base: string): string {
  let name = base;
  for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
  taken.add(name);
  return name;
}

export function isGraphOutput(graph: Graph, value: string): boolean {
  return graph.outputs.some((o) => o.name === value);
}

export function removeNodes(graph: Graph, doomed: ReadonlySet<Node>): void {
  if (doomed.size > 0) graph.nodes = graph.nodes.filter((n) => !doomed.has(n));
}
