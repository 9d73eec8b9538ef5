import { cloneGraph, type Graph, type Node } from '../onnx/graph.js';
import { toNumbers } from '../onnx/tensor.js';
import type { Pass } from './pass.js';
import { isGraphOutput, renameValue, replaceUses } from './rewrite.js';

/** Dropout is the identity at inference unless its training_mode input is a constant true. */
function isInferenceIdentity(graph: Graph, node: Node): boolean {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return false;
  if (node.opType === 'Identity') return true;
  if (node.opType !== 'Dropout') return false;
  const mask = node.outputs[1];
  if (mask && graph.nodes.some((n) => n.inputs.includes(mask))) return false;
  if (mask && isGraphOutput(graph, mask)) return false;
  const trainingMode = node.inputs[2];
  if (!trainingMode) return true;
  const t = graph.initializers.get(trainingMode);
  return t !== undefined && toNumbers(t).every((v) => v === 0);
}

/**
 * Remove Identity nodes and inference-time Dropout by wiring readers to the input. When the output is a
 * graph output, the input value takes its name instead, so the model's interface is unchanged.
 */
export function removeIdentity(graph: Graph): Graph {
  const g = cloneGraph(graph);
  const inputs = new Set(g.inputs.map((v) => v.name));
  for (const node of [...g.nodes]) {
    if (!isInferenceIdentity(g, node)) continue;
    const x = node.inputs[0];
    const y = node.outputs[0];
    if (!x || !y) continue;
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
  }
  return g;
}

export const removeIdentityPass: Pass = {
  name: 'remove-identity',
  description: 'remove Identity and inference-time Dropout nodes',
  run: removeIdentity,
};
