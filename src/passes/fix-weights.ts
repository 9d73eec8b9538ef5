import type { Graph } from '../onnx/graph.js';
import type { Pass } from './pass.js';

/**
 * Weights listed as graph inputs too (torch.onnx's keep_initializers_as_inputs, the default below
 * opset 9) are run-time overridable defaults by the spec. Every slimkit transform treats weights as
 * constants; once one deletes, slices or retypes a weight, its stale input declaration would turn it
 * into a required input (or a type clash). Dropping the declarations makes them constants in the file
 * too; IR 4 is the first version that allows initializers that are not inputs.
 */
export function fixWeightsAsConstants(graph: Graph): Graph {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  if (inputs.length === graph.inputs.length) return graph;
  return { ...graph, inputs, irVersion: Math.max(graph.irVersion, 4) };
}

export const fixWeightsPass: Pass = {
  name: 'fix-weights',
  description: 'drop graph-input declarations of initializers (keep_initializers_as_inputs exports): weights become constants',
  run: fixWeightsAsConstants,
};
