/** The fixed batch of a torch.onnx export without dynamic_axes, for the commands that feed batches. */
import type { Graph } from '../onnx/graph.js';
import { anyBatch, fixBatch } from '../passes/any-batch.js';
import { log } from './output.js';

export interface BatchFreed {
  /** The model with a free batch (the model itself when its batch was free already). */
  graph: Graph;
  /** A model derived from `graph`, with the batch the file was exported for set back. */
  restore(derived: Graph): Graph;
}

/** The model as exported: for commands (or modes) that feed no batches. */
export function asExported(graph: Graph): BatchFreed {
  return { graph, restore: (g) => g };
}

/**
 * Training, distillation, calibration and fine-tuning run batches of many images: a model exported
 * for one batch size is worked on with its batch freed (passes/any-batch.ts), and what the command
 * writes keeps the batch the user exported.
 */
export function atAnyBatch(graph: Graph, file: string, options: { quiet?: boolean } = {}): BatchFreed {
  const freed = anyBatch(graph, { file });
  const fixed = freed.fixedBatch;
  if (fixed === undefined) return asExported(graph);
  if (!options.quiet) {
    const reshapes = freed.reshapes.length ? ` (${freed.reshapes.length} stored Reshape target(s) now copy the batch)` : '';
    log(`note: ${file} was exported for a batch of ${fixed} only: working on batches of any size${reshapes}; the written model keeps the batch of ${fixed}`);
  }
  return { graph: freed.graph, restore: (g) => fixBatch(g, fixed, freed.freed) };
}
