/**
 * Records as slimkit's JSON documents print them. Every key slimkit writes as JSON is snake_case (the
 * recipes, the HTTP API and ONNX's own fields are); the TypeScript records keep camelCase, and these are
 * the one place the two meet. Not a generic converter on purpose: maps keyed by data (op histograms, node
 * names, metadata keys) must keep their keys.
 */
import type { EpochRecord } from '../engine/train.js';
import type { Boundary } from '../compress/prune/dependency-graph.js';
import type { StepRecord } from '../compress/prune/iterative.js';
import type { SearchStep, Target } from '../compress/prune/structured.js';
import type { FloatNode } from '../compress/quantize/mark.js';
import type { MixedPrecisionStep } from '../compress/quantize/mixed-precision.js';
import type { LayerSensitivity } from '../compress/quantize/sensitivity.js';

export interface EpochJson {
  epoch: number;
  train_loss: number;
  train_top1: number;
  test_loss: number;
  test_top1: number;
  lr: number;
  seconds: number;
  train_seconds: number;
  images_per_second: number;
}

export function epochJson(e: EpochRecord): EpochJson {
  return {
    epoch: e.epoch, train_loss: e.trainLoss, train_top1: e.trainAccuracy, test_loss: e.testLoss, test_top1: e.testAccuracy,
    lr: e.lr, seconds: e.seconds, train_seconds: e.trainSeconds, images_per_second: e.imagesPerSecond,
  };
}

export function pruneStepJson(s: StepRecord): { step: number; macs: number; sparsity?: number; test_top1?: number; seconds: number } {
  return { step: s.step, macs: s.macs, ...(s.sparsity !== undefined ? { sparsity: s.sparsity } : {}), ...(s.testAccuracy !== undefined ? { test_top1: s.testAccuracy } : {}), seconds: s.seconds };
}

export function searchStepJson(s: SearchStep): { p: number; macs: number; latency_ms?: number } {
  return { p: s.p, macs: s.macs, ...(s.latencyMs !== undefined ? { latency_ms: s.latencyMs } : {}) };
}

/** A node with a reason (a pruning boundary, a node quantization leaves float). */
export function nodeReasonJson(n: Boundary | FloatNode): { node: string; op_type: string; reason: string } {
  return { node: n.node, op_type: n.opType, reason: n.reason };
}

export function sensitivityJson(s: LayerSensitivity): { layer: string; op_type: string; score: number; agreement: number } {
  return { layer: s.layer, op_type: s.opType, score: s.score, agreement: s.agreement };
}

export function mixedStepJson(s: MixedPrecisionStep): { float_layer_count: number; top1: number; top1_drop_pt: number } {
  return { float_layer_count: s.floatLayers, top1: s.top1, top1_drop_pt: s.dropPt };
}

/**
 * A settings object with every key in snake_case, nested objects too: for records whose keys are all
 * names slimkit chose (the training log's start line, older run folders' records). Never for maps keyed by data.
 */
export function snakeSettings(o: Record<string, unknown>): Record<string, unknown> {
  const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const value = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v) ? snakeSettings(v as Record<string, unknown>) : v;
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), value(v)]));
}

/** What a pruning was asked to do, as its model's slimkit.pruning record states it. */
export type PruningAsked = { mode: 'structured'; target: Target; importance: string } | { mode: 'unstructured'; nm?: string; sparsity?: number };

/** The top-1 a pruning measured: before and after on the same images (`slim prune --data`), or after fine-tuning only. */
export interface PruningTop1 {
  test_top1?: number;
  top1_before?: number;
  eval_images?: number;
  data?: string;
}

/**
 * A pruned model's slimkit.pruning record (`slim prune` and a recipe's prune stage): what was asked, the
 * model it started from, and the top-1 measured after.
 */
export function pruningRecord(
  asked: PruningAsked,
  finetuneEpochs: number,
  before: { params: number; macs: number | null },
  top1: PruningTop1,
  how: { renormalizedLayers?: number; distilled?: boolean; finetuneImages?: number } = {},
): Record<string, unknown> {
  const what = asked.mode === 'structured'
    ? { target: asked.target, importance: asked.importance }
    : asked.nm ? { nm: asked.nm } : { sparsity: asked.sparsity };
  const measured = top1.top1_before !== undefined
    ? { top1_before: top1.top1_before, test_top1: top1.test_top1, eval_images: top1.eval_images, data: top1.data }
    : top1.test_top1 !== undefined ? { test_top1: top1.test_top1 } : {};
  return {
    mode: asked.mode,
    ...what,
    ...(how.renormalizedLayers ? { renormalized_layers: how.renormalizedLayers } : {}),
    ...(finetuneEpochs ? { finetune_epochs: finetuneEpochs, ...(how.finetuneImages !== undefined ? { finetune_images: how.finetuneImages } : {}), ...(how.distilled ? { distilled: true } : {}) } : {}),
    params_before: before.params,
    macs_before: before.macs,
    ...measured,
  };
}
