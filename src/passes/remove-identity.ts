import { cloneGraph, opsetVersion, type Graph, type Node, type ValueType } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { opDefFor } from '../ops/registry.js';
import type { Pass } from './pass.js';
import { isGraphOutput, renameValue, replaceUses } from './rewrite.js';

function sameType(a: ValueType | undefined, b: ValueType | undefined): boolean {
  if (!a?.shape || !b?.shape || a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  return a.shape.every((d, i) => d === b.shape![i]);
}

/**
 * Per node of `graph`, the input index its output equals, for nodes that hand an input on unchanged:
 * the op's own answer (OpDef.passesThrough), an output of the same type and shape as that input, and no
 * other output in use (Dropout's mask).
 */
function passThroughInputs(graph: Graph): Map<Node, number> {
  const facts = inferShapes(graph);
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  const found = new Map<Node, number>();
  for (const { node, inputs, outputs } of facts.nodes) {
    const def = opDefFor(node);
    if (!def?.passesThrough) continue;
    const opset = opsetVersion(graph, def.domain);
    const k = def.passesThrough({ node, attrs: def.parseAttrs(node, opset), opset, inputs });
    if (k === undefined || !node.inputs[k] || !sameType(outputs[0], inputs[k]?.type)) continue;
    if (node.outputs.slice(1).some((v) => v && (read.has(v) || isGraphOutput(graph, v)))) continue;
    found.set(node, k);
  }
  return found;
}

/**
 * Remove nodes that hand an input on unchanged — Identity, inference-time Dropout, and what exporters
 * leave behind: a Pad of zeros, Mul/Div by ones, Add/Sub of zeros, a Cast to the type the value has, an
 * identity Transpose, a Reshape/Flatten/Expand to the shape it has — by wiring readers to that input.
 * (A Pad of zeros left in would also stay float after int8 quantization.) When the output is a graph
 * output, the input value takes its name instead, so the model's interface is unchanged.
 */
export function removeIdentity(graph: Graph): Graph {
  const found = passThroughInputs(graph);
  if (found.size === 0) return graph;
  const g = cloneGraph(graph);
  const inputs = new Set(g.inputs.map((v) => v.name));
  // cloneGraph keeps the node order: the clone at index i is graph.nodes[i].
  const clones = [...g.nodes];
  graph.nodes.forEach((original, i) => {
    const k = found.get(original);
    const node = clones[i]!;
    if (k === undefined) return;
    // Read now: an earlier removal may have renamed this node's input.
    const x = node.inputs[k];
    const y = node.outputs[0];
    if (!x || !y) return;
    if (!isGraphOutput(g, y)) {
      g.nodes = g.nodes.filter((n) => n !== node);
      replaceUses(g, y, x);
      g.valueInfo.delete(y);
    } else if (!inputs.has(x) && !g.initializers.has(x) && !isGraphOutput(g, x)) {
      g.nodes = g.nodes.filter((n) => n !== node);
      g.valueInfo.delete(y);
      renameValue(g, x, y);
    }
    // Otherwise the node connects a graph input (or constant) straight to an output: it must stay.
  });
  return g;
}

export const removeIdentityPass: Pass = {
  name: 'remove-identity',
  description: 'remove nodes that hand an input on unchanged: Identity, inference Dropout, zero Pad, Mul by 1, Add of 0, same-type Cast, …',
  run: removeIdentity,
};
