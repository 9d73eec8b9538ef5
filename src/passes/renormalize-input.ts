import { cloneGraph, dataInputs, type Graph } from '../onnx/graph.js';
import { float32 } from '../onnx/tensor.js';
import { usageError } from '../errors.js';
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
export function renormalizeInput(graph: Graph, fed: InputNormalization, expected: InputNormalization, file = graph.name): Graph {
  const at = (v: readonly number[], c: number): number => v[c] ?? v[0]!;
  const listed = Math.max(fed.mean.length, fed.std.length, expected.mean.length, expected.std.length);
  const same = (c: number): boolean => at(fed.mean, c) === at(expected.mean, c) && at(fed.std, c) === at(expected.std, c);
  if (fed.scale === expected.scale && Array.from({ length: listed }, (_, c) => c).every(same)) return graph;
  const input = dataInputs(graph)[0];
  const dim = input?.shape?.[1];
  // A symbolic channel dim leaves the constants' shape unknown (a default's three values may not fit).
  const channels = typeof dim === 'number' ? dim : undefined;
  if (!input || channels === undefined) {
    throw usageError(`${file}: its input's channel count is not fixed, so its own mean/std cannot be put in front of it`, 'export the model with a fixed channel count');
  }
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
