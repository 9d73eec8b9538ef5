import { cloneGraph, type Dim, type Graph, type ValueInfo } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { freshName, renameValue, valueNames } from './rewrite.js';

/**
 * A fully convolutional classifier exported without a flatten (Conv 1×1 → global average pool) scores
 * [N, classes, 1, 1]; training's losses and the engine's top-1 take [N, classes]. `flattenScores` puts a
 * Flatten(axis 1) behind such a first output — same name, same values — and `unflattenScores` takes it
 * away again on a graph derived from it, so the written model has the output the file had. Pure.
 */
export interface FlatScores {
  graph: Graph;
  /** The output as the model declared it; undefined when it needed no flattening. */
  original?: ValueInfo;
  /** The scores' shape before flattening ([N, classes, 1, …]), declared or inferred; with `original`. */
  spatialShape?: Dim[];
}

/** The first output's shape when it is [N, classes, 1, …, 1] (declared, or inferred when undeclared). */
export function spatialScoreShape(graph: Graph): Dim[] | undefined {
  const output = graph.outputs[0];
  const shape = output && (output.shape ?? inferredShape(graph, output.name));
  return shape && shape.length > 2 && shape.slice(2).every((d) => d === 1) ? [...shape] : undefined;
}

export function flattenScores(graph: Graph): FlatScores {
  const output = graph.outputs[0];
  const shape = spatialScoreShape(graph);
  if (!output || !shape) return { graph };
  const g = cloneGraph(graph);
  const taken = valueNames(g);
  for (const n of g.nodes) taken.add(n.name);
  const spatial = freshName(taken, `${output.name}_spatial`);
  renameValue(g, output.name, spatial);
  // renameValue renamed the graph output too: it is the Flatten's now.
  g.outputs[0] = { name: output.name, dtype: output.dtype, shape: [shape[0]!, shape[1]!] };
  g.nodes.push({ name: freshName(taken, 'flatten_scores'), opType: 'Flatten', domain: '', inputs: [spatial], outputs: [output.name], attributes: { axis: { type: 'int', value: 1 } } });
  return { graph: g, original: output, spatialShape: shape };
}

/** An output declared without a shape (torch leaves some so): what shape inference makes of it, if anything. */
function inferredShape(graph: Graph, name: string): Dim[] | undefined {
  try {
    return inferShapes(graph).types.get(name)?.shape;
  } catch {
    return undefined; // an op slimkit cannot infer: the output stays as it is
  }
}

/** `derived` (from flattenScores' graph) with the Flatten taken away and the output declared as it was. */
export function unflattenScores(derived: Graph, original: ValueInfo): Graph {
  const flatten = derived.nodes.find((n) => n.opType === 'Flatten' && n.outputs[0] === original.name);
  if (!flatten) throw new Error(`unflattenScores: no Flatten writes '${original.name}' any more`);
  const g = cloneGraph(derived);
  g.nodes = g.nodes.filter((n) => n.name !== flatten.name);
  renameValue(g, flatten.inputs[0]!, original.name);
  g.outputs[0] = { ...original, ...(original.shape ? { shape: [...original.shape] } : {}) };
  return g;
}
