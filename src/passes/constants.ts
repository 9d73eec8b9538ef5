import { cloneGraph, type Graph, type Node } from '../onnx/graph.js';
import { float32, int64, makeTensor, type Tensor } from '../onnx/tensor.js';
import { inputError } from '../errors.js';
import type { Pass } from './pass.js';

/** The tensor a Constant node holds, from whichever of its value attributes is set. */
export function constantValue(node: Node): Tensor {
  for (const [key, a] of Object.entries(node.attributes)) {
    if (a.type === 'tensor' && key === 'value') return a.value;
    if (a.type === 'float' && key === 'value_float') return float32([], [a.value]);
    if (a.type === 'floats' && key === 'value_floats') return float32([a.value.length], a.value);
    if (a.type === 'int' && key === 'value_int') return int64([], [a.value]);
    if (a.type === 'ints' && key === 'value_ints') return int64([a.value.length], a.value);
    if (a.type === 'string' && key === 'value_string') return makeTensor('string', [], [a.value]);
    if (a.type === 'strings' && key === 'value_strings') return makeTensor('string', [a.value.length], [...a.value]);
  }
  throw inputError({
    where: `node '${node.name}' (Constant)`,
    problem: 'has no value attribute slimkit can read (sparse_value is not supported)',
    fix: 're-export the model with dense constants',
  });
}

/** Turn Constant nodes into initializers, which every other pass reads weights from. */
export function constantsToInitializers(graph: Graph): Graph {
  const g = cloneGraph(graph);
  const doomed = new Set<Node>();
  for (const node of g.nodes) {
    if (node.opType !== 'Constant' || (node.domain !== '' && node.domain !== 'ai.onnx')) continue;
    const out = node.outputs[0];
    if (!out || g.outputs.some((o) => o.name === out)) continue;
    g.initializers.set(out, constantValue(node));
    g.valueInfo.delete(out);
    doomed.add(node);
  }
  g.nodes = g.nodes.filter((n) => !doomed.has(n));
  return g;
}

export const constantsPass: Pass = {
  name: 'constants-to-initializers',
  description: 'move Constant node values into initializers',
  run: constantsToInitializers,
};
