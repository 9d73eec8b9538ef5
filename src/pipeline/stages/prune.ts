/**
 * prune: structured (channels out, a smaller dense model) or unstructured (zeros), optionally with
 * fine-tuning in the loop — the same library calls `slim prune` makes.
 */
import { epochJson, pruneStepJson, pruningRecord, type EpochJson, type PruningAsked } from '../../report/json-records.js';
import { usageError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import { hasFreeImageSize, restoreInputShapes } from '../../onnx/image-input.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import { foldBatchNorm } from '../../passes/index.js';
import { formatCount, formatPercent } from '../../report/format.js';
import { modelStats } from '../../runtime/stats.js';
import { normalizationFor } from '../../data/model-data.js';
import { imageSizeOf } from '../../data/types.js';
import {
  engineFineTuner,
  keptWithNote,
  pruneStructuredIteratively,
  pinForPruning,
  pruneUnstructuredGradually,
  type FineTuner,
  type FineTuneResult,
  type ImportanceName,
  type IterativeOptions,
  type StructuredOptions,
} from '../../compress/prune/index.js';
import type { Progress } from '../../util/terminal.js';
import type { PruneResult } from '../manifest.js';
import type { PruneSpec } from '../recipe.js';
import type { StageContext, StageOutput } from './context.js';
import { withStep } from '../../onnx/provenance.js';

export async function runPrune(ctx: StageContext, spec: PruneSpec, from: string): Promise<StageOutput<'prune'>> {
  const data = await ctx.data();
  const source = await ctx.graphOf(from, 'trainable', { batches: true });
  // A model with a free height and width is pruned at the run's image size (a MAC target counts real
  // pixels) and keeps its free input.
  const imageSize = imageSizeOf(data.train);
  const freeSize = hasFreeImageSize(source);
  const graph = freeSize ? pinForPruning(source, imageSize) : source;
  const device = spec.finetune?.device ?? ctx.device;
  const normalization = normalizationFor(graph, {});
  let gpuSeconds = 0;
  const histories: EpochJson[][] = [];
  // Each fine-tuning's top-1 before its first step (null where it resumed): the report draws the cuts.
  const starts: (number | null)[] = [];
  let bar: Progress | undefined;
  const tuner: FineTuner = spec.finetune
    ? timed(
        engineFineTuner({
          data: { train: data.train, test: data.test },
          ...(freeSize ? { freeImageSize: true } : {}),
          device,
          batch: spec.finetune.batch,
          lr: spec.finetune.lr,
          seed: ctx.recipe.seed,
          normalization,
          ...(ctx.threads !== undefined ? { threads: ctx.threads } : {}),
          // A crash loses at most the epoch in progress: the rerun reaches the same cuts and resumes.
          checkpointDir: ctx.workDir,
          onResumed: (epochs) => ctx.log(`  fine-tuning resumed from its checkpoint after epoch ${epochs}`),
          onDiscarded: (why) => ctx.log(`  note: a fine-tuning checkpoint in the work folder was not this run's (${why}): starting that fine-tuning over`),
          onProgress: (p) => {
            if (p.phase !== 'train') return;
            if (p.step === 1) {
              bar?.stop();
              bar = ctx.progress(`  fine-tune epoch ${p.epoch + 1}/${p.epochs}`, p.stepsPerEpoch, 'steps');
            }
            bar?.update(p.step, { loss: p.loss.toFixed(3) });
          },
        }),
        (s) => (gpuSeconds += device === 'cuda' ? s : 0),
        (history, start) => {
          histories.push(history.map(epochJson));
          starts.push(start ?? null);
        },
      )
    : {
        finetune: () => Promise.reject(usageError('this prune stage has no fine-tuning', 'add `finetune: { epochs: N }` to it')),
        gradients: () => Promise.reject(usageError('taylor importance needs `finetune: { epochs: N }`')),
      };
  const loop: IterativeOptions = {
    tuner,
    steps: spec.finetune?.steps ?? 1,
    epochs: spec.finetune?.epochs ?? 0,
    ...(spec.finetune?.distill ? { distill: true } : {}),
    onStep: (s) => {
      bar?.stop();
      bar = undefined;
      if ((spec.finetune?.steps ?? 1) > 1 || s.testAccuracy !== undefined) {
        ctx.log(`  step ${s.step}: ${s.sparsity !== undefined ? `sparsity ${(s.sparsity * 100).toFixed(1)} %` : `MACs ${formatCount(s.macs)}`}${s.testAccuracy !== undefined ? `, test top-1 ${formatPercent(s.testAccuracy)}` : ''}`);
      }
    },
  };

  // Counted as the models are written (BN folded), as `slim info` and the bench count them: the trainable
  // form's re-inserted BN has γ and β where the folded model has conv biases.
  const foldedBefore = foldBatchNorm(graph);
  const before = modelStats(foldedBefore, inferShapes(foldedBefore), undefined, imageSize);
  let pruned: Graph;
  let result: Omit<PruneResult, 'params_before' | 'params_after' | 'macs_before' | 'macs_after'>;
  try {
    if (spec.structured) {
      const options: StructuredOptions = {
        target: spec.structured.target_macs !== undefined ? { kind: 'macs', value: spec.structured.target_macs } : { kind: 'ratio', value: spec.structured.ratio! },
        importance: spec.importance as ImportanceName,
        scope: spec.scope,
        roundTo: spec.round_to,
        maxRatio: spec.max_ratio,
        seed: ctx.recipe.seed,
        ...(freeSize ? { shapesFolded: true } : {}),
        ...(spec.keep ? { keep: spec.keep } : {}),
        ...(spec.compensate || spec.renormalize ? { calibration: { images: data.train, normalization, samples: spec.calib_samples, seed: ctx.recipe.seed, ...(ctx.threads !== undefined ? { threads: ctx.threads } : {}) }, compensate: spec.compensate, renormalize: spec.renormalize } : {}),
      };
      const r = await pruneStructuredIteratively(graph, options, loop);
      for (const k of r.keptWith) {
        const note = keptWithNote(k, 'keep:');
        if (note) ctx.log(`  ${note}`);
      }
      pruned = r.graph;
      result = {
        mode: 'structured',
        ratio_chosen: r.p,
        groups: r.groups.length,
        boundaries: r.boundaries.length,
        compensated: r.compensated,
        renormalized_layers: r.renormalized.length,
        steps: r.steps.map(pruneStepJson),
        ...(r.testAccuracy !== undefined ? { test_top1: r.testAccuracy } : {}),
        finetune_epochs: spec.finetune?.epochs ?? 0,
        ...finetuneCurves(histories, starts, data.test.labels.length),
      };
    } else {
      const u = spec.unstructured!;
      const nm = u.nm ? /^(\d+):(\d+)$/.exec(u.nm) : null;
      const r = await pruneUnstructuredGradually(
        graph,
        { scope: spec.scope, ...(u.sparsity !== undefined ? { sparsity: u.sparsity } : {}), ...(nm ? { nm: { n: Number(nm[1]), m: Number(nm[2]) } } : {}), ...(spec.keep ? { keep: spec.keep } : {}) },
        loop,
      );
      pruned = r.graph;
      result = { mode: 'unstructured', sparsity: r.sparsity, steps: r.steps.map(pruneStepJson), ...(r.testAccuracy !== undefined ? { test_top1: r.testAccuracy } : {}), finetune_epochs: spec.finetune?.epochs ?? 0, ...finetuneCurves(histories, starts, data.test.labels.length) };
    }
  } finally {
    bar?.stop();
  }
  if (graph !== source) pruned = restoreInputShapes(pruned, source);
  const asked: PruningAsked = spec.structured
    ? { mode: 'structured', target: spec.structured.target_macs !== undefined ? { kind: 'macs', value: spec.structured.target_macs } : { kind: 'ratio', value: spec.structured.ratio! }, importance: spec.importance }
    : { mode: 'unstructured', ...(spec.unstructured?.nm ? { nm: spec.unstructured.nm } : { sparsity: spec.unstructured?.sparsity }) };
  pruned = withStep(pruned, 'slimkit.pruning', pruningRecord(asked, result.finetune_epochs, before, { ...(result.test_top1 !== undefined ? { test_top1: result.test_top1 } : {}) }, { renormalizedLayers: result.renormalized_layers ?? 0, distilled: Boolean(spec.finetune?.distill), ...(spec.finetune ? { finetuneImages: data.train.labels.length } : {}) }));
  const model = foldBatchNorm(pruned);
  const after = modelStats(model, inferShapes(model), undefined, imageSize);
  ctx.log(`  MACs ${formatCount(before.macs)} → ${formatCount(after.macs)}, params ${formatCount(before.params)} → ${formatCount(after.params)}`);
  return {
    model,
    trainable: pruned,
    result: { ...result, macs_before: before.macs, macs_after: after.macs, params_before: before.params, params_after: after.params },
    gpuSeconds,
  };
}

/** The tuner, reporting each fine-tuning's seconds (for the GPU-seconds column) and epochs (for the report's curves). */
function timed(tuner: FineTuner, onSeconds: (s: number) => void, onHistory: (h: NonNullable<FineTuneResult['history']>, start: number | undefined) => void): FineTuner {
  return {
    finetune: async (g, o) => {
      const r = await tuner.finetune(g, o);
      onSeconds(r.seconds);
      if (r.history?.length) onHistory(r.history, r.startAccuracy);
      return r;
    },
    gradients: (g, o) => tuner.gradients(g, o),
  };
}

/** The fine-tunings' epochs and starting scores for the manifest, when there were any. */
function finetuneCurves(histories: EpochJson[][], starts: (number | null)[], evalImages: number): Pick<PruneResult, 'finetune_history' | 'finetune_start_top1' | 'finetune_eval_images'> {
  return histories.length ? { finetune_history: histories, ...(starts.some((s) => s !== null) ? { finetune_start_top1: starts } : {}), finetune_eval_images: evalImages } : {};
}
