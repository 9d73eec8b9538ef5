/**
 * `slim prune --data`: top-1 before and after on held-out test images. Pruning without fine-tuning can
 * take a model to chance (a 50 % MAC cut of a small MobileNetV2), and nothing else in its output says so.
 */
import { listedByClass, takeAcrossClasses } from '../../data/subsets.js';
import { sourceOfSet } from '../../data/stream.js';
import type { ImageSet, Normalization } from '../../data/types.js';
import type { Graph } from '../../onnx/graph.js';
import { formatPercent, formatPointChange } from '../../report/format.js';
import { top1 } from './quantize-eval.js';

/** Test images scored when --test-limit does not say: enough to see a collapse, quick on a CPU. */
export const PRUNE_EVAL_IMAGES = 2000;

export interface Top1Change {
  before: number;
  after: number;
  images: number;
  data: string;
}

/** The held-out images a prune is scored on, the same for the model before and after. */
export interface HeldOutScoring {
  top1(graph: Graph, label: string): Promise<number>;
  images: number;
  data: string;
}

export function heldOutScoring(test: ImageSet, normalization: Normalization, o: { testLimit?: number; threads?: number }): HeldOutScoring {
  const limit = o.testLimit ?? PRUNE_EVAL_IMAGES;
  // A folder's test split lists one class after another: its first 2,000 were one or two classes' images
  // (74.2 % → 10.9 % reported for 73.2 % → 55.9 %). CIFAR-10's come shuffled: its first N, as eval --limit.
  const data = limit < test.labels.length && listedByClass(test) ? { source: sourceOfSet(takeAcrossClasses(test, limit)), streamed: false } : { source: sourceOfSet(test), streamed: false, limit };
  return {
    top1: (graph, label) => top1(graph, data, normalization, o.threads, label),
    images: Math.min(limit, test.labels.length),
    data: test.name,
  };
}

/**
 * One line; a model the cut left near chance is called out with what to do. Near: within 4 % of the way
 * from chance to 100 % (13.6 % for 10 classes, 4.1 % for 1,000, where 1.25× chance, 0.125 %, let 45.1 % →
 * 0.27 % pass), or within a tenth of the way from chance to where the model was (66.85 % → 13.6 % kept
 * 6 % of its lead over chance and passed). Not from a model that started there. `less`: how to prune
 * less with the flags given ('a higher --target-macs').
 */
export function top1Line(r: Top1Change, classes: number, fineTuned: boolean, less: string): string {
  const line = `top-1 ${formatPercent(r.before)} → ${formatPercent(r.after)} (${formatPointChange((r.after - r.before) * 100)}) on ${r.images} test images of ${r.data}`;
  const chance = 1 / classes;
  const near = chance + Math.max(0.04 * (1 - chance), 0.1 * (r.before - chance));
  if (r.after >= near || r.before < near) return line;
  return `${line} — warning: near chance (${formatPercent(chance)}): ${fineTuned ? 'fine-tune longer (--finetune)' : 'fine-tune it (--finetune N)'} or prune less (${less})`;
}

/** How to prune less, in the flags of this run. */
export function pruneLess(o: { targetMacs?: number; ratio?: number; targetLatency?: number; sparsity?: number; nm?: unknown }): string {
  if (o.targetMacs !== undefined) return 'a higher --target-macs';
  if (o.targetLatency !== undefined) return 'a higher --target-latency';
  if (o.ratio !== undefined) return 'a lower --ratio';
  if (o.sparsity !== undefined) return 'a lower --sparsity';
  return o.nm ? 'a looser --nm pattern, such as 4:8' : 'a smaller cut';
}
