/**
 * A recipe's model file with ops slimkit has no definition for (a DepthToSpace from F.pixel_shuffle): bench and
 * deploy stages run it as it is, quantize stages leave those ops float (their output types measured
 * here once, with ONNX Runtime, as slim quantize does), and stages that train it are refused before
 * anything runs — the engine has no lowering for them.
 */
import { inputError } from '../errors.js';
import type { Graph } from '../onnx/graph.js';
import { unknownOps } from '../onnx/validate.js';
import { withMeasuredOpaqueTypes } from '../runtime/opaque-types.js';
import type { Recipe } from './recipe.js';

export async function sourceWithUndefinedOps(recipe: Recipe, graph: Graph, file: string, log: ((line: string) => void) | undefined): Promise<Graph> {
  const names = unknownOps(graph);
  if (names.length === 0) return graph;
  const trains = recipe.stages.find((s) => s.kind === 'train' || s.kind === 'finetune' || s.kind === 'distill' || s.kind === 'prune' || (s.kind === 'quantize' && s.spec.qat));
  if (trains) {
    throw inputError({
      file: recipe.file,
      where: `stage '${trains.id}' (${trains.kind}${trains.kind === 'quantize' ? ' with qat' : ''})`,
      problem: `trains ${recipe.model.file} in slimkit's engine, which has no definition for ${names.join(', ')}`,
      fix: 'export the model without those ops; quantize (without qat), bench and deploy stages take it as it is, quantize leaving those ops float',
    });
  }
  if (!recipe.stages.some((s) => s.kind === 'quantize')) return graph;
  const measured = await withMeasuredOpaqueTypes(graph, file);
  log?.(`note: slimkit has no definition for ${names.join(', ')} (${measured.nodes.length} node${measured.nodes.length > 1 ? 's' : ''} of ${recipe.model.file}): quantize stages leave ${measured.nodes.length > 1 ? 'them' : 'it'} float, as exported`);
  return measured.graph;
}
