import { isFloat } from '../onnx/dtype.js';
import type { Graph } from '../onnx/graph.js';
import { numel } from '../onnx/tensor.js';

/**
 * Learnable parameters of a graph, counted the way PyTorch's `sum(p.numel() for p in model.parameters())`
 * does: every float initializer element (conv and linear weights and biases, BN γ and β) except
 * BatchNormalization running mean and variance, which are buffers, not parameters. Integer
 * initializers (shapes, axes) are not parameters either.
 */
export function countParameters(graph: Graph): number {
  const runningStats = new Set<string>();
  for (const node of graph.nodes) {
    if (node.opType !== 'BatchNormalization') continue;
    for (const name of node.inputs.slice(3, 5)) if (name) runningStats.add(name);
  }
  let n = 0;
  for (const [name, t] of graph.initializers) {
    if (isFloat(t.dtype) && !runningStats.has(name)) n += numel(t.dims);
  }
  return n;
}
