/**
 * A bias stored once and read by several layers (a Conv applied twice, or weights tied by hand) has one
 * float value but, quantized, one int32 form per layer: its scale is scale(input) · scale(weight), and
 * the layers see different inputs. Left shared it stayed float, ONNX Runtime quantized it once per layer
 * itself and warned at every load that the float one was no longer used — and QAT trained one value
 * for two int32 tensors. Each further reader gets its own copy (tensors are immutable: the data is
 * shared until one changes).
 */
import { cloneGraph, type Graph } from '../../onnx/graph.js';
import { inferShapes, type InferenceResult } from '../../onnx/shape-inference.js';
import { opDefFor } from '../../ops/registry.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import { nodeLabel } from './mark.js';

export function untieSharedBiases(graph: Graph, given?: InferenceResult): Graph {
  const reads = new Map<string, number>();
  for (const n of graph.nodes) for (const v of n.inputs) if (graph.initializers.has(v)) reads.set(v, (reads.get(v) ?? 0) + 1);
  if (![...reads.values()].some((count) => count > 1)) return graph;
  const facts = given ?? inferShapes(graph);
  // Per bias initializer, the readers that take it as a bias: node index, slot, and what it scales with.
  const readers = new Map<string, { index: number; slot: number; input: string; weight: string }[]>();
  const position = new Map(graph.nodes.map((n, i) => [n, i]));
  for (const f of facts.nodes) {
    const def = opDefFor(f.node);
    const index = position.get(f.node);
    if (!def?.quant || index === undefined) continue;
    const opset = graph.opsets[f.node.domain === 'ai.onnx' ? '' : f.node.domain] ?? graph.opsets[''] ?? 0;
    const unit = def.quant.mark({ node: f.node, attrs: def.parseAttrs(f.node, opset), opset, inputs: f.inputs, outputs: f.outputs });
    unit?.inputs.forEach((m, slot) => {
      const name = f.node.inputs[slot];
      if (m?.role !== 'bias' || !name || !graph.initializers.has(name)) return;
      const list = readers.get(name) ?? [];
      list.push({ index, slot, input: f.node.inputs[m.input] ?? '', weight: f.node.inputs[m.weight] ?? '' });
      readers.set(name, list);
    });
  }
  // Readers with the same input and weight share one int32 form: only the others need a copy.
  const untie = [...readers].flatMap(([name, list]) => list.filter((r) => r.input !== list[0]!.input || r.weight !== list[0]!.weight).map((r) => ({ name, ...r })));
  if (untie.length === 0) return graph;
  const g = cloneGraph(graph);
  const taken = valueNames(g);
  for (const { name, index, slot } of untie) {
    const node = g.nodes[index]!;
    const copy = freshName(taken, `${nodeLabel(node)}.bias`);
    g.initializers.set(copy, g.initializers.get(name)!);
    node.inputs[slot] = copy;
  }
  return g;
}
