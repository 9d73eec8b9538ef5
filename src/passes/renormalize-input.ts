import { cloneGraph, dataInputs, type Graph } from '../onnx/graph.js';
import { float32 } from '../onnx/tensor.js';
import { freshName, replaceUses, valueNames } from './rewrite.js';

/** x = (pixel · scale − mean[c]) / std[c], as slimkit's loaders normalize images. */
export interface InputNormalization {
  scale: number;
  mean: readonly number[];
  std: readonly number[];
}

/**
 * `graph`, which expects its N×C×H×W image input normalized as `expected`, taking images normalized as
 * `fed` instead: a per-channel Mul and Add in front turn one into the other exactly
 * (pixel = (x·σ_fed + μ_fed) / s_fed, then x′ = (pixel·s_exp − μ_exp) / σ_exp). Distillation feeds teacher
 * and student one batch; a teacher trained with other statistics (ImageNet's, say, inside a model that
 * normalizes raw pixels) gets its own back. Pure; the graph itself when the two agree.
 */
export function renormalizeInput(graph: Graph, fed: InputNormalization, expected: InputNormalization): Graph {
  const input = dataInputs(graph)[0];
  const channels = input?.shape?.[1];
  if (!input || typeof channels !== 'number') throw new Error(`renormalizeInput: ${graph.name} has no N×C×H×W input with a fixed channel count`);
  const at = (v: readonly number[], c: number): number => v[c] ?? v[0]!;
  const scale = Array.from({ length: channels }, (_, c) => (at(fed.std, c) * expected.scale) / (fed.scale * at(expected.std, c)));
  const shift = Array.from({ length: channels }, (_, c) => ((at(fed.mean, c) * expected.scale) / fed.scale - at(expected.mean, c)) / at(expected.std, c));
  if (scale.every((a) => Math.abs(a - 1) < 1e-7) && shift.every((b) => Math.abs(b) < 1e-7)) return graph;

  const g = cloneGraph(graph);
  const taken = valueNames(g);
  for (const n of g.nodes) taken.add(n.name);
  const [a, b, scaled, renormalized] = ['renormalize_scale', 'renormalize_shift', 'renormalize_scaled', 'renormalized_input'].map((base) => freshName(taken, base)) as [string, string, string, string];
  replaceUses(g, input.name, renormalized);
  g.initializers.set(a, float32([1, channels, 1, 1], scale));
  g.initializers.set(b, float32([1, channels, 1, 1], shift));
  g.nodes.unshift(
    { name: freshName(taken, 'renormalize_mul'), opType: 'Mul', domain: '', inputs: [input.name, a], outputs: [scaled], attributes: {} },
    { name: freshName(taken, 'renormalize_add'), opType: 'Add', domain: '', inputs: [scaled, b], outputs: [renormalized], attributes: {} },
  );
  return g;
}
