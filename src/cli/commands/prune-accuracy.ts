/**
 * `slim prune --data`: top-1 before and after on held-out test images. Pruning without fine-tuning can
 * take a model to chance (a 50 % MAC cut of a small MobileNetV2), and nothing else in its output says so.
 */
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

export async function top1BeforeAfter(before: Graph, after: Graph, test: ImageSet, normalization: Normalization, o: { testLimit?: number; threads?: number }): Promise<Top1Change> {
  const limit = o.testLimit ?? PRUNE_EVAL_IMAGES;
  const data = { set: test, limit };
  return {
    before: await top1(before, data, normalization, o.threads, 'eval before'),
    after: await top1(after, data, normalization, o.threads, 'eval pruned'),
    images: Math.min(limit, test.labels.length),
    data: test.name,
  };
}

/** One line; a model left near chance (under twice its rate) is called out with what to do. */
export function top1Line(r: Top1Change, classes: number, fineTuned: boolean): string {
  const line = `top-1 ${formatPercent(r.before)} → ${formatPercent(r.after)} (${formatPointChange((r.after - r.before) * 100)}) on ${r.images} test images of ${r.data}`;
  if (r.after >= 2 / classes || r.before < 2 / classes) return line;
  return `${line} — warning: near chance (${formatPercent(1 / classes)}): ${fineTuned ? 'fine-tune longer (--finetune) or prune less' : 'fine-tune it (--finetune N) or prune less (a higher --target-macs)'}`;
}
