import { refuseLaunchedRanks } from '../../engine/distributed-env.js';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { rm } from 'node:fs/promises';
import { usageError } from '../../errors.js';
import { hasIntegerWeights, layerName } from '../../passes/freeze-layers.js';
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { makeTensor } from '../../onnx/tensor.js';
import { openSession } from '../../runtime/ort.js';
import { encodeModel, writeModel } from '../../onnx/io.js';
import { loadModel } from '../../onnx/validate.js';
import { loadedModelStats, macsPerImage, type ModelStats } from '../../runtime/stats.js';
import { epochLine, formatBytes, KD_LOSS_NOTE, formatCount, formatPercent, table } from '../../report/format.js';
import { nodeReasonJson, pruneStepJson, pruningRecord, searchStepJson, type PruningAsked } from '../../report/json-records.js';
import {
  asPruningSeesIt, buildDependencyGraph, compareLatencySpread, engineFineTuner, groupLabels, keptWithNote, pinForPruning, IMPORTANCE_NAMES, latencyMeter, preferredChannelMultiple, pruneStructuredIteratively,
  pruneUnstructuredGradually, sizeReport, type Calibration, type FineTuner, type ImportanceName, type Scope, type StructuredOptions, type Target,
} from '../../compress/prune/index.js';
import type { ImageSet } from '../../data/types.js';
import { isCifar10 } from '../../data/cifar10.js';
import { checkCifarImageSize, checkDataDir, resizeOnCifar, resizeWithoutData, checkImageSize, withImageSizeFlag, requireMeasurableSize, loadDataset, loadTrainTest, normalizationFor, modelInputSize, recordedClasses, type DataOptions, modelChannels, withGivenNormalization } from '../../data/model-data.js';
import { recordedResize, trainedResize, withTrainedResize } from '../../data/model-resize.js';
import { withClassNames } from '../../zoo/metadata.js';
import { isSplitFolder } from '../../data/image-folder.js';
import { takeAcrossClasses } from '../../data/subsets.js';
import { asExported, forBatches } from '../../data/model-batches.js';
import { log, progress } from '../../util/terminal.js';
import { otherLoadNote, watchOtherLoad } from '../../runtime/cpu-load.js';
import { printResult, type CommonOptions } from '../output.js';
import { CHANNEL_COUNTS, imageSizeArg, MEAN_HELP, RESIZE_HELP, resizeArg, nonNegativeInt, meanList, positiveInt, STD_HELP, stdList, withJson, withThreads } from '../options.js';
import { hasFreeImageSize, imageInputShapes, restoreInputShapes } from '../../onnx/image-input.js';
import { autocastFor, PRECISIONS, type PrecisionChoice } from '../../engine/precision.js';
import { checkDistinctOutputs, checkLogFile, checkOutputDir, checkOutputFile } from '../paths.js';
import { writeMadeModel } from '../write-result.js';
import { checkTrainingFlags, explainInterrupt, leftOverNote, limitsBeyondDataNote } from '../train-options.js';
import type { EpochRecord } from '../../engine/train.js';
import { heldOutScoring, pruneLess, top1Line } from './prune-accuracy.js';
import { withStep } from '../../onnx/provenance.js';
import { digestWeights } from '../../engine/resume.js';

interface PruneOptions extends CommonOptions, DataOptions {
  imageSize?: [number, number];
  output?: string;
  structured?: boolean;
  unstructured?: boolean;
  analyze?: boolean;
  targetMacs?: number;
  ratio?: number;
  targetLatency?: number;
  importance: ImportanceName;
  scope: Scope;
  roundTo?: number | 'auto';
  maxRatio: number;
  keep?: string[];
  layerRatio?: Record<string, number>;
  sparsity?: number;
  nm?: { n: number; m: number };
  finetune?: number;
  checkpointDir?: string;
  resume?: boolean;
  log?: string;
  steps: number;
  distill?: boolean;
  batch: number;
  lr?: number;
  reinsertBn: boolean;
  device: 'cpu' | 'cuda';
  precision: PrecisionChoice;
  trainLimit?: number;
  testLimit?: number;
  threads?: number;
  bench?: boolean;
  seed: number;
  compensate: boolean;
  renormalize: boolean;
  calibSamples: number;
}

/** `nothingAt`: the value that prunes nothing (a ratio of 0, a kept fraction of 1), refused as such: it wrote a copy without a word. */
const fraction = (flag: string, { open, nothingAt }: { open: 'lower' | 'upper' | 'both'; nothingAt?: 0 | 1 }) => (value: string): number => {
  const n = Number(value);
  if (nothingAt !== undefined && n === nothingAt) throw new InvalidArgumentError(`${flag} ${value} prunes nothing (the model would be written as it is): give a fraction in (0, 1)`);
  const ok = open === 'lower' ? n > 0 && n <= 1 : open === 'upper' ? n >= 0 && n < 1 : n > 0 && n < 1;
  const range = open === 'lower' ? '(0, 1]' : open === 'upper' ? '[0, 1)' : '(0, 1)';
  if (!Number.isFinite(n) || !ok) throw new InvalidArgumentError(`${flag} must be a fraction in ${range}, got '${value}'`);
  return n;
};

const nmPattern = (value: string): { n: number; m: number } => {
  const m = /^(\d+):(\d+)$/.exec(value.trim());
  const n = m ? Number(m[1]) : NaN;
  const total = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1 && n < total)) throw new InvalidArgumentError(`--nm takes N:M with 1 ≤ N < M, e.g. 2:4, got '${value}'`);
  return { n, m: total };
};

const layerRatios = (value: string, previous: Record<string, number> = {}): Record<string, number> => {
  const out = { ...previous };
  for (const part of value.split(',')) {
    const at = part.lastIndexOf('=');
    const ratio = Number(part.slice(at + 1));
    if (at <= 0 || !(ratio >= 0 && ratio < 1)) throw new InvalidArgumentError(`--layer-ratio takes NODE=RATIO with RATIO in [0, 1), got '${part}'`);
    out[part.slice(0, at)] = ratio;
  }
  return out;
};

const roundTo = (value: string): number | 'auto' => (value === 'auto' ? 'auto' : positiveInt('--round-to')(value));

const list = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

export function registerPrune(program: Command): void {
  withThreads(
    withJson(
      program
        .command('prune')
        .description('prune a model: remove channels (a smaller, faster dense model) or zero weights (sparse)')
        .argument('<model>', 'an .onnx file')
        .option('-o, --output <file>', 'where to write the pruned model')
        .option('--structured', 'remove whole channels (Conv filters, Gemm features) along dependency groups')
        .option('--unstructured', 'zero individual weights by magnitude (same file size and speed; smaller gzip)')
        .option('--analyze', 'list the channel groups and the boundaries pruning stops at; write nothing')
        .option('--target-macs <r>', 'structured: keep at most this fraction of the MACs, e.g. 0.5', fraction('--target-macs', { open: 'lower', nothingAt: 1 }))
        .option('--ratio <r>', 'structured: remove this fraction of the channels of every group', fraction('--ratio', { open: 'upper', nothingAt: 0 }))
        .option('--target-latency <r>', 'structured: reach this fraction of the measured batch-1 latency', fraction('--target-latency', { open: 'lower', nothingAt: 1 }))
        .option('--importance <name>', `channel importance: ${IMPORTANCE_NAMES.join(', ')}`, 'l2')
        .option('--scope <scope>', "'layer' (every group alike) or 'global' (rank channels / weights across the model)", 'layer')
        .option('--round-to <n>', `structured: kept channel counts are multiples of N; 1 turns it off (default: auto, ${preferredChannelMultiple()} on this CPU — ORT's fast conv layout needs it)`, roundTo)
        .option('--max-ratio <r>', 'structured: most of any group that may go', fraction('--max-ratio', { open: 'both' }), 0.9)
        .option('--keep <nodes>', 'nodes left as they are: node names (--analyze) or PyTorch module names (slim info --layers), comma-separated; repeatable', list)
        .option('--layer-ratio <node=r,...>', 'structured: fixed ratios for the channels these nodes (or modules) write (outside the search)', layerRatios)
        .option('--sparsity <s>', 'unstructured: fraction of weights to zero', fraction('--sparsity', { open: 'upper', nothingAt: 0 }))
        .option('--nm <N:M>', 'unstructured: keep N of every M consecutive weights along the input axis (2:4)', nmPattern)
        .option('--finetune <epochs>', 'fine-tune for this many epochs in all (needs --data and the training engine)', positiveInt('--finetune'))
        .option('--steps <k>', 'with --finetune: prune and fine-tune in K rounds', positiveInt('--steps'), 1)
        .option('--distill', 'with --finetune: distill from the unpruned model')
        .option('--checkpoint-dir <dir>', 'with --finetune: checkpoint every fine-tuning epoch into DIR, so a crash loses at most one')
        .option('--resume', 'with --checkpoint-dir: continue where a crashed run of the same command stopped (the cuts are the same: pruning is deterministic)')
        .option('--log <file.jsonl>', 'with --finetune: append one JSON line per fine-tuning epoch (and start/end events), every step\'s as one run')
        .option('--data <name|folder>', "training images ('cifar10' or a folder): calibrate mean replacement of removed channels, --finetune, --importance taylor")
        .option('--no-compensate', 'with --data: drop removed channels instead of folding their mean activations into the next layer')
        .option('--no-renormalize', "with --data: leave the layers after a cut as they are, instead of giving each Conv's output channels back the mean and spread they had before it (what re-estimating BatchNorm statistics does)")
        .option('--calib-samples <n>', 'images to measure mean activations on', positiveInt('--calib-samples'), 256)
        .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download to ~/.cache/slimkit)')
        .option('--resize <mode>', `with --data <folder>: how its images are brought to the model's input: ${RESIZE_HELP}`, resizeArg)
        .option('--mean <r,g,b|v>', `with --data: ${MEAN_HELP}; recorded in the written model`, meanList('--mean', CHANNEL_COUNTS))
        .option('--std <r,g,b|v>', `with --data: ${STD_HELP}`, stdList('--std', CHANNEL_COUNTS))
        .option('--train-limit <n>', 'fine-tune on N training images only (CIFAR-10\'s first N; an image folder\'s taken across its classes)', positiveInt('--train-limit'))
        .option('--test-limit <n>', 'score fine-tuning steps on N test images only (an image folder: N across its classes)', positiveInt('--test-limit'))
        .option('--batch <n>', 'fine-tuning batch size', positiveInt('--batch'), 128)
        .option('--lr <x>', 'fine-tuning peak learning rate (default 0.01; 0.005 with --no-reinsert-bn on a BN-folded model)', (v) => {
          const n = Number(v);
          if (!(n > 0)) throw new InvalidArgumentError(`--lr must be a positive number, got '${v}'`);
          return n;
        })
        .option('--no-reinsert-bn', 'a BN-folded model (torch.onnx export): fine-tune its folded weights directly instead of with BatchNormalization re-inserted for training')
        .option('--device <device>', "'cpu' or 'cuda' for fine-tuning", 'cpu')
        .option('--precision <p>', 'fine-tuning: auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16 (~2× on CPUs with AMX)', (v: string) => {
          if (!(PRECISIONS as readonly string[]).includes(v) || v === 'fp16') throw new InvalidArgumentError(`--precision must be one of auto, fp32, bf16, got '${v}'`);
          return v as PrecisionChoice;
        }, 'auto')
        .option('--bench', 'measure batch-1 latency of the model before and after (timed in turns, same run)')
        .option('--image-size <h,w>', "the size MACs are counted at when the model's input height and width are free (default: the model metadata)", imageSizeArg)
        .option('--seed <n>', 'seed of the random criterion and of fine-tuning', nonNegativeInt('--seed'), 0),
    ),
  )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  slim prune model.onnx -o small.onnx --structured --target-macs 0.5 --bench',
        '  slim prune model.onnx -o small.onnx --structured --ratio 0.3 --importance l1 --keep /conv1/Conv',
        '  slim prune model.onnx -o sparse.onnx --unstructured --sparsity 0.8 --scope global',
        '  slim prune model.onnx -o sparse.onnx --unstructured --nm 2:4',
        '  slim prune model.onnx -o small.onnx --structured --target-macs 0.5 --finetune 10 --steps 5 --data cifar10 --device cuda',
        '  slim prune model.onnx --analyze',
      ].join('\n'),
    )
    .action(async (file: string, options: PruneOptions) => {
      if (options.finetune) refuseLaunchedRanks('slim prune --finetune');
      if (options.finetune) checkTrainingFlags(options);
      check(options);
      if (options.output) checkOutputFile(options.output, '-o', [file], { model: true });
      if (options.log) checkLogFile(options.log, [file, options.output]);
      checkDistinctOutputs([['-o', options.output], ['--checkpoint-dir', options.checkpointDir], ['--log', options.log]]);
      const loaded = await loadModel(file);
      if (hasIntegerWeights(loaded.graph)) {
        throw usageError(`${file} is an int8 model (its weights are integers behind DequantizeLinear): ${options.analyze ? 'its channel groups are those of the float model it was quantized from (--analyze them there)' : options.structured ? 'structured pruning removes channels of float weights' : 'unstructured pruning zeros float weights'}`, 'prune the float model, then quantize what it writes (slim quantize PRUNED.onnx …)');
      }
      // --image-size (or CIFAR-10's 32×32) recorded in a free-size model, as train and quantize record it.
      const sized = withImageSizeFlag(loaded.graph, file, options.imageSize, [options.data], { quiet: Boolean(options.analyze) });
      const size = modelInputSize(sized);
      const free = hasFreeImageSize(sized);
      if (options.targetMacs !== undefined || options.targetLatency !== undefined || options.bench) requireMeasurableSize(sized, file, size);
      // Pruning works at the size the model is used at (a MAC target counts real pixels); the written
      // model keeps its free height and width.
      // --mean/--std become the model's recorded statistics: mean replacement, fine-tuning and the written model use them.
      // Pinned to the size it is pruned at, its shape computations folded first (pinForPruning).
      const pinnedFree = Boolean(free && size);
      const pinned = withGivenNormalization(pinnedFree ? pinForPruning(sized, size!) : sized, options);
      if (options.analyze) return analyze(file, pinned, options, pinnedFree);
      // Mean replacement and fine-tuning feed batches of many images.
      const batch = options.data ? forBatches(pinned, file, { data: options }) : asExported(pinned);
      const graph = batch.graph;
      // ORT gets models as bytes here, so weights kept in external data files are inlined first.
      const inputBytes = loaded.externalFiles.length ? encodeModel(pinned).model : loaded.bytes;
      const before = await loadedModelStats(loaded, size);
      const data = await loadTrainingData(graph, file, options);
      // CIFAR-10 is not resized: a model for other images is refused, as in every command (it pruned on,
      // skipping its --data's renormalization and scores, exit 0).
      if (data) checkImageSize(graph, data.train, file, '--data');
      const tuner = makeTuner(graph, file, options, { data, freeImageSize: pinnedFree });
      const calibration = calibrationFor(graph, file, options, data);
      const seconds = performance.now();
      // Held-out images score the model before and after: the network as the data feeds it. The model
      // before is scored first, so its line does not come after a long fine-tune.
      const scoring = data?.heldOut ? heldOutScoring(data.test, batch.normalization ?? normalizationFor(graph, options, file), options) : undefined;
      const top1Before = scoring ? await scoring.top1(graph, 'eval before') : undefined;
      // Ctrl-C while fine-tuning says what was kept, as slim train does.
      const interrupt = options.finetune ? explainInterrupt('slim prune', options, (state) => keptByPrune(options, state)) : undefined;

      let pruned: Graph;
      let details: Record<string, unknown>;
      let human: string[];
      let testAccuracy: number | undefined;
      let renormalizedLayers = 0;
      let nm: { n: number; m: number; tensors: ReadonlySet<string> } | undefined;
      if (options.structured) {
        const r = await structured(graph, options, tuner, calibration, pinnedFree);
        if ((options.roundTo ?? 'auto') === 'auto' && r.roundTo < preferredChannelMultiple()) {
          log(`note: kept channel counts are multiples of ${r.roundTo}, not ${preferredChannelMultiple()} (--round-to auto on this CPU): at ${preferredChannelMultiple()} ${options.targetMacs !== undefined ? 'the MAC target was out of reach' : 'the cut removed nothing'}, its narrow layers unable to lose channels`);
        }
        for (const k of r.keptWith) {
          const note = keptWithNote(k, '--keep', `--layer-ratio ${k.name}=0 keeps only the channels it writes`);
          if (note) log(note);
        }
        const shortfall = ratioShortfallNote(options, r.roundTo, r.groups);
        if (shortfall) log(shortfall);
        // --ratio 0.99 left groups at 10 % (max-ratio 0.9) without a word.
        if (options.ratio !== undefined && options.ratio > options.maxRatio) {
          log(`note: --ratio ${options.ratio} is more than --max-ratio ${options.maxRatio}, the most any group may lose: each group lost at most ${Math.round(options.maxRatio * 100)} % of its channels — raise --max-ratio (below 1) to remove more`);
        }
        pruned = r.graph;
        testAccuracy = r.testAccuracy;
        renormalizedLayers = r.renormalized.length;
        details = {
          target: targetOf(options),
          importance: options.importance,
          scope: options.scope,
          round_to: r.roundTo,
          max_ratio: options.maxRatio,
          ratio_chosen: r.p,
          groups: r.groups.map((g) => ({ root: g.root, label: g.label, op_type: g.opType, channels_before: g.channelsBefore, channels_after: g.channelsAfter, unit: g.unit, values: g.values, nodes: g.nodes })),
          boundaries: r.boundaries.map(nodeReasonJson),
          importance_fallbacks: r.fallbacks,
          mean_replacement: r.compensated,
          renormalized_layers: r.renormalized.length,
          untied_weights: r.untied,
          ...(r.compensated ? { not_mean_replaced: r.uncompensated } : {}),
          search: r.search.map(searchStepJson),
          ...(r.steps.length ? { steps: r.steps.map(pruneStepJson) } : {}),
          ...(r.latency ? { latency_search_ms: { before: r.latency.beforeMs, after: r.latency.afterMs } } : {}),
        };
        human = [
          `groups: ${r.groups.length}${r.boundaries.length ? `, boundaries: ${r.boundaries.map((b) => `${b.node} (${b.opType}: ${b.reason})`).join('; ')}` : ', no boundaries'}`,
          table(['group root', 'channels', 'nodes'], r.groups.map((g) => [g.label, `${g.channelsBefore} → ${g.channelsAfter}${g.unit > 1 ? ` (in ${g.unit}s)` : ''}`, g.nodes])),
          ...(r.groups.some((g) => g.unit > 1) ? ['(in Ns: channels that go together — a GroupNorm group, or one position in every group of a grouped conv — so a fraction rounds to whole ones)'] : []),
          ...(r.latency ? [`latency while searching (batch 1): ${r.latency.beforeMs.toFixed(2)} → ${r.latency.afterMs.toFixed(2)} ms (${(r.latency.afterMs / r.latency.beforeMs).toFixed(2)}×)`] : []),
          ...(r.renormalized.length ? [`${r.renormalized.length} Conv layer(s) after the cuts given back their output channels' mean and spread on ${options.calibSamples} calibration images (--no-renormalize leaves them as cut)`] : []),
        ];
        if (r.uncompensated.length > 0) {
          const shown = r.uncompensated.slice(0, 3).join(', ') + (r.uncompensated.length > 3 ? ', …' : '');
          log(`note: mean replacement did not reach ${r.uncompensated.length} layer(s) that lost input channels (${shown}; e.g. a MatMul on channels-last values): they read the removed channels as zeros`);
        }
        for (const u of r.untied) log(`note: '${u.weight}' is read by layers that now need it apart (their channels cut differently, or other removed means folded in): the pruned model stores ${u.copies} copies of it, and fine-tuning trains them apart`);
        // slim train and torch.onnx's eval export fold BN, so 'bn' meets folded models most: say how to keep it.
        const bnFolded = options.importance === 'bn' && !graph.nodes.some((n) => n.opType === 'BatchNormalization');
        if (r.fallbacks.length) log(`importance '${options.importance}' could not score ${r.fallbacks.length} group(s) (${bnFolded ? 'the model has no BatchNormalization: it was folded into the Convs' : 'e.g. no BatchNormalization left'}); they were scored by L2${bnFolded ? ' — to rank by BN γ, prune a model with its BN kept (slim train --no-fold, or torch.onnx.export(..., training=torch.onnx.TrainingMode.PRESERVE))' : ''}`);
      } else {
        const r = await pruneUnstructuredGradually(
          graph,
          { ...(options.sparsity !== undefined ? { sparsity: options.sparsity } : {}), scope: options.scope, ...(options.nm ? { nm: options.nm } : {}), ...(options.keep ? { keep: options.keep } : {}) },
          loopOptions(options, tuner),
        );
        pruned = r.graph;
        testAccuracy = r.testAccuracy;
        if (options.nm) nm = { ...options.nm, tensors: new Set(r.tensors.map((t) => t.name)) };
        details = {
          sparsity: r.sparsity,
          sparsity_before: r.sparsityBefore,
          scope: options.scope,
          ...(options.nm ? { nm: `${options.nm.n}:${options.nm.m}` } : {}),
          tensors: r.tensors.map((t) => ({ name: t.name, node: t.node, elements: t.elements, zeros: t.zerosAfter })),
          skipped: r.skipped,
          ...(r.steps.length ? { steps: r.steps.map(pruneStepJson) } : {}),
        };
        human = [
          unstructuredSummary(r),
          ...nearlyEmptyNote(r.tensors, options.scope),
          'the file stays dense: zeros shrink the gzip size (and a sparse format²); ONNX Runtime runs the same dense kernels',
        ];
      }

      // Scored before the batch is restored: the network as the data feeds it.
      const accuracy = scoring && top1Before !== undefined ? { before: top1Before, after: await scoring.top1(pruned, 'eval pruned'), images: scoring.images, data: scoring.data } : undefined;
      // Said when --data gave no held-out images to score on, rather than left out without a word.
      if (data && !accuracy) log(`note: top-1 not measured: ${options.data} has no test/ (or val/) split, and scoring on its training images would flatter the model`);
      // ORT must run it before it is written; every number reported comes from the file read back.
      pruned = batch.restore(pruned);
      // Fine-tuned on the data's labels: the model records their names (the ones it recorded, when it did).
      if (options.finetune && data) pruned = withClassNames(pruned, data.train.classes);
      // How a folder's images were resized, when it fine-tuned on them or --resize said so: later reads do the same.
      if (options.data && (options.finetune || options.resize)) pruned = withTrainedResize(pruned, trainedResize(options.data, options.resize, recordedResize(graph, file)));
      if (pinned !== sized) pruned = restoreInputShapes(pruned, sized);
      pruned = withStep(pruned, 'slimkit.pruning', pruningRecord(pruningAsked(options), options.finetune ?? 0, before, accuracy ? { top1_before: accuracy.before, test_top1: accuracy.after, eval_images: accuracy.images, data: accuracy.data } : { ...(testAccuracy !== undefined ? { test_top1: testAccuracy } : {}) }, { renormalizedLayers, distilled: Boolean(options.distill), ...(options.finetune && data ? { finetuneImages: Math.min(options.trainLimit ?? Infinity, data.train.labels.length) } : {}) }));
      await smokeTest(inputBytes, encodeModel(pruned).model, pinned, options, pinnedFree);
      interrupt?.trained(options.output!);
      await writeMadeModel(pruned, options.output!);
      interrupt?.stop();
      if (options.finetune) await rm(stepFile(options.output!), { force: true });
      const out = await loadModel(options.output!);
      const outBytes = out.bytes;
      const after = await loadedModelStats(out, size);
      const sizeAfter = sizeReport(out.graph, { bytes: outBytes, ...(nm ? { nm } : {}) });
      let latency: { before: number; after: number; quartiles?: [number, number] } | undefined;
      if (options.bench) {
        const bar = progress('latency (in turns)', 1, 'runs');
        const inputShapes = size ? imageInputShapes(sized, size) : undefined;
        const otherLoad = watchOtherLoad();
        const timed = await compareLatencySpread([inputBytes, outBytes], { ...(options.threads !== undefined ? { threads: options.threads } : {}), ...(inputShapes ? { inputShapes } : {}) });
        bar.stop();
        const spread = timed.quartiles[1];
        latency = { before: timed.ms[0]!, after: timed.ms[1]!, ...(spread ? { quartiles: spread } : {}) };
        const busy = otherLoadNote(otherLoad());
        if (busy) log(busy);
      }
      const result = {
        file,
        output: options.output,
        mode: options.structured ? 'structured' : 'unstructured',
        macs_before: before.macs,
        macs_after: after.macs,
        params_before: before.params,
        params_after: after.params,
        nonzero_params_before: before.nonzeroParams,
        nonzero_params_after: after.nonzeroParams,
        size_bytes_before: before.sizeBytes,
        size_bytes_after: after.sizeBytes,
        gzip_bytes_before: before.gzipBytes,
        gzip_bytes_after: after.gzipBytes,
        sparse_bytes_estimate_after: sizeAfter.sparseBytesEstimate,
        ...(latency ? { latency_ms_before: latency.before, latency_ms_after: latency.after, latency_ratio: latency.after / latency.before, ...(latency.quartiles ? { latency_ratio_quartiles: latency.quartiles } : {}) } : {}),
        ...(testAccuracy !== undefined ? { test_top1: testAccuracy } : {}),
        ...(accuracy ? { top1_before: accuracy.before, top1_after: accuracy.after, eval_images: accuracy.images, eval_data: accuracy.data } : {}),
        seconds: (performance.now() - seconds) / 1000,
        [options.structured ? 'structured' : 'unstructured']: details,
      };
      const accuracyLine = accuracy && data ? top1Line(accuracy, data.test.classes.length, Boolean(options.finetune), pruneLess(options)) : undefined;
      if (accuracyLine?.includes('warning:') && options.json) log(accuracyLine);
      const latencyLine = latency && options.targetLatency !== undefined ? latencyCheckNote(options.targetLatency, latency.after / latency.before, latency.quartiles) : undefined;
      printResult(options, result, () => renderSummary(options, before, after, sizeAfter.sparseBytesEstimate, latency, [...human, ...(accuracyLine ? [accuracyLine] : []), ...(latencyLine ? [latencyLine] : [])]));
      // After the result, so that a failed prune's error stays its only line.
      if (options.structured && !data && !options.finetune) {
        log("tip: with --data cifar10 (or an image folder) each layer after a cut gets its output channels' mean and spread on calibration images back, which keeps far more accuracy without fine-tuning, and top-1 before and after is measured");
      } else if (!options.structured && !data && !options.finetune) {
        // A trial's 80 % sparsity left its model at chance (one class for every image), and nothing said so.
        log('tip: with --data cifar10 (or an image folder) top-1 before and after is measured — zeroing weights without fine-tuning (--finetune N) can cost a model most of its accuracy');
      }
    });
}

/**
 * Both models run in ONNX Runtime on one random image and give outputs of the same shape. Shape
 * inference already vouches for the pruned graph; this is the runtime's word. A failure is a slimkit
 * bug (a channel rule), so it is reported as one, not as a problem with the user's model.
 */
async function smokeTest(before: Uint8Array, after: Uint8Array, graph: Graph, o: PruneOptions, freeSize: boolean): Promise<void> {
  const input = dataInputs(graph)[0];
  if (!input?.shape || input.dtype !== 'float32' || dataInputs(graph).length !== 1) return;
  const dims = input.shape.map((d) => (typeof d === 'number' ? d : 1));
  // A model written with a free height and width must run at other sizes than the one it was pruned at.
  const other = freeSize && dims.length === 4 ? [dims[0]!, dims[1]!, dims[2]! + 8, dims[3]! + 8] : undefined;
  const run = async (bytes: Uint8Array, shape: number[]): Promise<string> => {
    const x = makeTensor('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)));
    const session = await openSession(bytes, { label: 'pruned model check', ...(o.threads !== undefined ? { threads: o.threads } : {}) });
    try {
      return JSON.stringify(Object.values(await session.run({ [input.name]: x })).map((t) => t.dims));
    } finally {
      await session.close();
    }
  };
  const [want, got] = [await run(before, dims), await run(after, dims)];
  if (want !== got) throw new Error(`the pruned model's outputs have shapes ${got}, the original's ${want}`);
  if (!other) return;
  const original = await run(before, other).catch(() => undefined);
  if (original === undefined) return;
  const pruned = await run(after, other).catch((e: unknown) => `fails: ${(e as Error).message.split('\n')[0]}`);
  if (pruned !== original) throw new Error(`the pruned model runs at ${dims.slice(2).join('×')} but not as the original at ${other.slice(2).join('×')} (${pruned})`);
}

/**
 * --target-latency with --bench: the check's own ratio above the target (by more than its 5 % noise) is
 * said, not left for the reader to spot in the table (a trial: searched 0.59×, measured 0.65×, no word).
 */
export function latencyCheckNote(target: number, measured: number, quartiles?: [number, number]): string | undefined {
  // Above by its noise, or with three rounds in four above: either way the target is not what was timed.
  if (measured <= target * 1.05 && !(quartiles && quartiles[0] > target)) return undefined;
  return `note: the --bench check measured ${measured.toFixed(2)}× the latency${quartiles ? ` (half its rounds between ${quartiles[0].toFixed(2)}× and ${quartiles[1].toFixed(2)}×)` : ''}, above the --target-latency ${target} the search reached on its own timings: timings vary between runs, most on a busy machine — measure again with slim bench, or ask for a lower --target-latency`;
}

/** The flags that decide the cuts, as a checkpoint records them (snake_case: the resume check names them as flags). */
function cutSettings(o: PruneOptions): Record<string, unknown> {
  const set = { target_macs: o.targetMacs, ratio: o.ratio, target_latency: o.targetLatency, sparsity: o.sparsity, nm: o.nm ? `${o.nm.n}:${o.nm.m}` : undefined, importance: o.importance, scope: o.scope, steps: o.steps, round_to: o.roundTo, max_ratio: o.maxRatio, keep: o.keep, layer_ratio: o.layerRatio, compensate: o.compensate, renormalize: o.renormalize };
  return Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined));
}

/** A layer as `slim info --layers` and --keep name it (PyTorch's module), not its initializer (`onnx::Conv_110`). */
const layerOf = (t: { name: string; node: string }): string => (t.node ? layerName({ name: t.node } as Parameters<typeof layerName>[0]) : t.name);

/**
 * `14 weight tensors, 50.0 % zeros over all (per tensor 7.5–99.4 %)`: a global ranking spreads the zeros
 * unevenly (a trial read "14 weight tensors at 50.0 % zeros" of tensors from 7.5 to 99.4 %).
 */
export function unstructuredSummary(r: { sparsity: number; tensors: readonly { elements: number; zerosAfter: number }[]; skipped: readonly { name: string; node: string; reason: string }[] }): string {
  const shares = r.tensors.map((t) => t.zerosAfter / Math.max(t.elements, 1));
  const [low, high] = [Math.min(...shares), Math.max(...shares)];
  const spread = shares.length > 1 && high - low >= 0.0005 ? ` (per tensor ${(low * 100).toFixed(1)}–${(high * 100).toFixed(1)} %)` : '';
  const dense = r.skipped.length ? `; left dense: ${r.skipped.map((s) => `${layerOf(s)} (${s.reason})`).join(', ')}` : '';
  return `${r.tensors.length} weight tensor${r.tensors.length === 1 ? '' : 's'}, ${(r.sparsity * 100).toFixed(1)} % zeros over all${spread}${dense}`;
}

/** Layers left with almost no weights (≥ 95 % zeros): a global ranking can all but remove a small layer, and that is said. */
export function nearlyEmptyNote(tensors: readonly { name: string; node: string; elements: number; zerosAfter: number }[], scope: string): string[] {
  const empty = tensors.filter((t) => t.zerosAfter >= 0.95 * t.elements);
  if (empty.length === 0) return [];
  const named = empty.map((t) => `${layerOf(t)} (${((100 * t.zerosAfter) / t.elements).toFixed(1)} %)`).join(', ');
  const keep = [...new Set(empty.map(layerOf))].join(',');
  const its = empty.length === 1 ? 'its' : 'their';
  return [`warning: ${named} ${empty.length === 1 ? 'is' : 'are'} almost all zeros: ${scope === 'global' ? `the global ranking took nearly all of ${its} weights` : `nearly all of ${its} weights were cut`} — ${scope === 'global' ? '--scope layer gives each tensor the same share, or ' : ''}--keep ${keep} leaves ${empty.length === 1 ? 'it' : 'them'} dense`];
}

/** What an interrupted `prune --finetune` kept: fine-tuning checkpoints, and the model after the last finished step. */
function keptByPrune(o: PruneOptions, state: { out?: string }): string {
  if (state.out) return `the model was being written to ${state.out}: if it is not there, run the same command again${o.checkpointDir ? ' with --resume (nothing trains again)' : ''}`;
  const step = existsSync(stepFile(o.output!)) ? `; ${stepFile(o.output!)} holds the model after the last finished step` : '';
  const dir = o.checkpointDir;
  if (!dir) return `no fine-tuning epoch was kept (pass --checkpoint-dir DIR to make a run resumable with --resume)${step}`;
  const begun = existsSync(dir) && readdirSync(dir).some((f) => f.startsWith('finetune-') && existsSync(path.join(dir, f, 'last.ckpt')));
  return begun
    ? `${dir} holds the fine-tuning checkpoints; run the same command with --resume to continue: the cuts come out the same, finished fine-tunings are read back${step}`
    : `no fine-tuning epoch had finished, so nothing was kept (a checkpoint is written in ${dir} after each epoch)${step}`;
}

/** Where the model after each fine-tuning step is kept while a run is in progress. */
function stepFile(output: string): string {
  return output.replace(/(\.onnx)?$/i, '.partial.onnx');
}

/** What this command was asked to do, for the model's slimkit.pruning record. */
function pruningAsked(o: PruneOptions): PruningAsked {
  if (o.structured) return { mode: 'structured', target: targetOf(o), importance: o.importance };
  return { mode: 'unstructured', ...(o.nm ? { nm: `${o.nm.n}:${o.nm.m}` } : { sparsity: o.sparsity }) };
}

function targetOf(o: PruneOptions): Target {
  if (o.targetMacs !== undefined) return { kind: 'macs', value: o.targetMacs };
  if (o.targetLatency !== undefined) return { kind: 'latency', value: o.targetLatency };
  return { kind: 'ratio', value: o.ratio! };
}

function check(o: PruneOptions): void {
  if (!IMPORTANCE_NAMES.includes(o.importance)) throw usageError(`unknown --importance '${o.importance}'`, `choose from ${IMPORTANCE_NAMES.join(', ')}`);
  if (o.scope !== 'layer' && o.scope !== 'global') throw usageError(`unknown --scope '${String(o.scope)}'`, "choose 'layer' or 'global'");
  if (o.device !== 'cpu' && o.device !== 'cuda') throw usageError(`unknown --device '${String(o.device)}'`, "choose 'cpu' or 'cuda'");
  if (o.analyze) return;
  if (!o.output) throw usageError('no output file', 'pass -o <file> (or --analyze to only list the groups)');
  if (!o.structured && !o.unstructured) {
    // Flags of one mode given without the mode: name it.
    if (o.nm || o.sparsity !== undefined) throw usageError(`${o.nm ? '--nm' : '--sparsity'} is unstructured pruning (weights set to zero)`, 'add --unstructured');
    if (o.targetMacs !== undefined || o.ratio !== undefined || o.targetLatency !== undefined) throw usageError('--target-macs, --ratio and --target-latency are structured pruning (channels removed)', 'add --structured');
    throw usageError('choose --structured (remove channels: a smaller, faster dense model) or --unstructured (zero weights: sparse)');
  }
  if (o.structured && o.unstructured) throw usageError('choose --structured or --unstructured, not both');
  const targets = [o.targetMacs, o.ratio, o.targetLatency].filter((t) => t !== undefined).length;
  if (o.structured) {
    // The flag given for the other mode first: "takes exactly one target" sent a --sparsity to look for one.
    if (o.sparsity !== undefined || o.nm) throw usageError('--sparsity and --nm are for --unstructured', 'use --target-macs / --ratio with --structured');
    if (targets !== 1) throw usageError('--structured takes exactly one target', 'pass --target-macs R, --ratio R or --target-latency R');
  } else {
    if (targets > 0) throw usageError('--target-macs, --ratio and --target-latency are for --structured', 'use --sparsity S or --nm N:M');
    if ((o.sparsity === undefined) === !o.nm) throw usageError('--unstructured takes --sparsity S or --nm N:M (one of them)');
    if (o.importance !== 'l2' && o.importance !== 'l1') throw usageError('--unstructured ranks weights by magnitude', 'drop --importance');
  }
  if ((o.finetune || o.importance === 'taylor') && !o.data) {
    throw usageError(`${o.finetune ? '--finetune' : '--importance taylor'} needs training data`, 'pass --data cifar10 (or an image folder)');
  }
  // Steps end at the widths one cut makes (iterative.ts): what they add is the fine-tuning between cuts.
  if (o.steps > 1 && !o.finetune) throw usageError(`--steps ${o.steps} cuts in ${o.steps} rounds with fine-tuning between them, and no --finetune is given (${o.steps} cuts back to back reach the widths of one)`, `pass --finetune EPOCHS (at least ${o.steps}), or drop --steps`);
  if (o.steps > 1 && o.finetune && o.steps > o.finetune) throw usageError(`--finetune ${o.finetune} over --steps ${o.steps}: ${o.steps - o.finetune} of the cuts would get no fine-tuning before the next`, `pass --finetune ${o.steps} or more, or --steps ${o.finetune}`);
  if (o.steps > 1 && o.targetLatency !== undefined) throw usageError('iterative pruning takes a MAC or channel-ratio target', 'use --target-macs or --ratio with --steps, or --steps 1');
  if (o.distill && !o.finetune) throw usageError('--distill needs --finetune EPOCHS');
  if (o.resize && !o.data) throw resizeWithoutData();
  if (o.checkpointDir && !o.finetune) throw usageError('--checkpoint-dir keeps fine-tuning epochs', 'pass --finetune EPOCHS, or drop --checkpoint-dir');
  if (o.log && !o.finetune) throw usageError('--log records fine-tuning epochs', 'pass --finetune EPOCHS, or drop --log');
  if (o.resume && !o.checkpointDir) throw usageError('--resume needs --checkpoint-dir DIR (where the crashed run checkpointed)');
  // Where the epochs go, checked before any work (its parent must exist and be writable).
  if (o.checkpointDir) checkOutputDir(o.checkpointDir, '--checkpoint-dir');
  // As slim train: an earlier run's checkpoints are continued only when asked, never silently. A step's
  // folder without a checkpoint (a run stopped in its first epoch) holds nothing to continue.
  const kept = o.checkpointDir && existsSync(o.checkpointDir) ? readdirSync(o.checkpointDir).filter((f) => f.startsWith('finetune-') && existsSync(path.join(o.checkpointDir!, f, 'last.ckpt'))) : [];
  if (o.checkpointDir && !o.resume && kept.length > 0) {
    throw usageError(`${o.checkpointDir} holds fine-tuning checkpoints of an earlier run`, 'pass --resume to continue it, or another --checkpoint-dir (or delete that one) to start over');
  }
  if (o.checkpointDir && o.resume && kept.length === 0) log(`note: --resume: ${o.checkpointDir} holds no fine-tuning checkpoint yet, so fine-tuning starts at epoch 1`);
}

/**
 * Training and test images named by --data: CIFAR-10's two splits, a folder's train/ and test/ (or val/), or one
 * folder of class folders used for both.
 */
/** `heldOut`: the test images are not the training images (CIFAR-10, or a folder with train/ and test/). */
async function loadTrainingData(graph: Graph, file: string, o: PruneOptions): Promise<{ train: ImageSet; test: ImageSet; heldOut: boolean } | undefined> {
  if (!o.data) return undefined;
  const dataDir = o.dataDir ? { dataDir: o.dataDir } : {};
  // Labelled by the class names the model records, if it does.
  const classes = recordedClasses(graph, file, o.finetune ? { trains: (n) => `fine-tune on images of all ${n.model} classes, or prune without --finetune (--data then only calibrates and scores)` } : {});
  if (isCifar10(o.data)) {
    if (o.resize) throw resizeOnCifar();
    checkCifarImageSize(graph, file, o.data, modelInputSize(graph));
    return { ...(await loadTrainTest(o.data, { ...dataDir, trainLimit: o.trainLimit, testLimit: o.testLimit, classes })), heldOut: true };
  }
  checkDataDir(o);
  // A folder's images resized as the model records (slimkit.resize), as slim eval reads them.
  const resize = recordedResize(graph, file);
  if (await isSplitFolder(o.data).catch(() => false)) return { ...(await loadTrainTest(o.data, { size: modelInputSize(graph), channels: modelChannels(graph), trainLimit: o.trainLimit, testLimit: o.testLimit, classes, recordedResize: resize, resize: o.resize })), heldOut: true };
  // With both limits only the larger is read: each limit's round-robin over the classes is a prefix of
  // the larger one's, so the sets are the same and a folder too large to hold whole can be pruned.
  const read = o.trainLimit !== undefined && o.testLimit !== undefined ? { limit: Math.max(o.trainLimit, o.testLimit) } : {};
  const set = await loadDataset({ data: o.data, ...dataDir, recordedResize: resize, ...(o.resize ? { resize: o.resize } : {}), ...read }, modelInputSize(graph), modelChannels(graph), classes);
  return { train: o.trainLimit !== undefined ? takeAcrossClasses(set, o.trainLimit) : set, test: o.testLimit !== undefined ? takeAcrossClasses(set, o.testLimit) : set, heldOut: false };
}

/** Calibration for mean replacement and renormalization, on the training images, when they fit the model's input. */
function calibrationFor(graph: Graph, file: string, o: PruneOptions, data: { train: ImageSet } | undefined): Calibration | undefined {
  if (!data || (!o.compensate && !o.renormalize) || !o.structured) return undefined;
  return { images: data.train, normalization: normalizationFor(graph, o, file), samples: o.calibSamples, seed: o.seed, ...(o.threads !== undefined ? { threads: o.threads } : {}) };
}

/** `freeImageSize`: `graph` is a free-size model pinned to the data's size (FineTuner's freeImageSize). */
function makeTuner(graph: Graph, file: string, o: PruneOptions, { data, freeImageSize }: { data: { train: ImageSet; test: ImageSet } | undefined; freeImageSize: boolean }): FineTuner | undefined {
  if (!data || (!o.finetune && o.importance !== 'taylor')) return undefined;
  // Before pruning: fine-tuning (or Taylor's gradients) on images of another size would train the model at a size it is not written for.
  checkImageSize(graph, data.train, file, '--data');
  const { train, test } = data;
  // As slim train says it: a small folder at the default batch is a few steps an epoch, with images left out.
  const leftOver = o.finetune ? leftOverNote(train.labels.length, o.trainLimit, o.batch) : undefined;
  if (leftOver) log(leftOver);
  const beyond = limitsBeyondDataNote({ train: train.labels.length, test: test.labels.length }, o);
  if (beyond) log(beyond);
  let bar: ReturnType<typeof progress> | undefined;
  let barEpoch = -1;
  // Epochs of all the steps' fine-tunings so far (each step's are counted from 1 by the engine): the lines
  // and bars count the run's --finetune epochs, as its --log does (step 2 said "epoch 1/1" and "1/2").
  let epochsDone = 0;
  // Said before the first fine-tune's epochs, not again at each later step's.
  let kdNote = o.distill ? `\n${KD_LOSS_NOTE}` : '';
  return engineFineTuner({
    data: { train, test },
    ...(freeImageSize ? { freeImageSize } : {}),
    device: o.device,
    ...(autocastFor(o.precision) ? { autocast: autocastFor(o.precision)! } : {}),
    batch: o.batch,
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.reinsertBn ? {} : { reinsertBatchNorm: false }),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.trainLimit !== undefined ? { trainLimit: o.trainLimit } : {}),
    seed: o.seed,
    normalization: normalizationFor(graph, o, file),
    ...(o.finetune ? { onEpoch: (e: EpochRecord) => log(`fine-tune ${epochLine({ ...e, epoch: ++epochsDone }, o.finetune!, Boolean(o.distill))}`) } : {}),
    onStartScored: (top1) => {
      log(`fine-tuning the pruned model from test top-1 ${formatPercent(top1)} (engine, ${Math.min(o.testLimit ?? Infinity, test.labels.length).toLocaleString('en')} test images)${kdNote}`);
      kdNote = '';
    },
    ...(o.log && o.finetune ? { log: { file: o.log, epochs: o.finetune } } : {}),
    ...(o.checkpointDir
      ? {
          checkpointDir: o.checkpointDir,
          onResumed: (epochs: number) => {
            epochsDone += epochs;
            log(`fine-tuning resumed from ${o.checkpointDir} after epoch ${epochs}`);
          },
          onDiscarded: () => log(`note: a checkpoint in ${o.checkpointDir} was made for other cuts of this model (the pruning came out otherwise this time): that fine-tuning starts over`),
          refuseChangedSettings: true,
          // Another input model or other cuts asked for is another run, refused, naming the flag (a changed
          // --target-macs silently redid a finished step); the same flags cut otherwise (another machine's
          // rounding) start that fine-tuning over.
          resumeKey: { model_digest: digestWeights(graph), ...cutSettings(o) },
          command: 'slim prune',
        }
      : {}),
    onProgress: (p) => {
      if (p.phase === 'eval') {
        // The epoch's test images: a bar of their own (a minute or more for a large model on a CPU).
        if (!p.evaluated) return;
        if (p.evaluated.done === 0) {
          bar?.stop();
          bar = progress(p.epoch < 0 ? 'fine-tune: scoring the pruned model first' : `fine-tune epoch ${epochsDone + 1}/${o.finetune}: evaluating`, p.evaluated.total, 'images');
        }
        bar?.update(p.evaluated.done);
        if (p.evaluated.done === p.evaluated.total) bar?.stop();
        return;
      }
      if (p.epoch !== barEpoch || p.step === 1) {
        bar?.stop();
        bar = progress(`fine-tune epoch ${epochsDone + 1}/${o.finetune}`, p.stepsPerEpoch, 'steps');
        barEpoch = p.epoch;
      }
      bar?.update(p.step, { loss: p.loss.toFixed(3) });
      if (p.step === p.stepsPerEpoch) bar?.stop();
    },
  });
}

/**
 * --ratio asks for a share of each group's channels; rounding kept counts to a multiple larger than a
 * narrow group's share removes far less (a trial's 8–32-channel nets kept 96–99 % of their MACs at
 * --ratio 0.3 with multiples of 16), and that is said with the way to get closer.
 */
export function ratioShortfallNote(o: Pick<PruneOptions, 'ratio' | 'roundTo'>, roundTo: number, groups: readonly { channelsBefore: number; channelsAfter: number }[]): string | undefined {
  if (o.ratio === undefined || roundTo <= 1 || groups.length === 0) return undefined;
  const before = groups.reduce((a, g) => a + g.channelsBefore, 0);
  const removed = 1 - groups.reduce((a, g) => a + g.channelsAfter, 0) / before;
  // More than 5 points short (global scope's 37.8 % of a 0.5 went unsaid under a half-the-ratio rule).
  if (removed + 1e-9 >= o.ratio - 0.05) return undefined;
  const widths = groups.map((g) => g.channelsBefore);
  // --round-to 1 alone was the advice, and a trial's model at the same MACs ran 1.65× slower with it.
  return `note: --ratio ${o.ratio} removed ${(removed * 100).toFixed(1)} % of the prunable channels: kept counts are multiples of ${roundTo} (--round-to ${o.roundTo ?? 'auto'}${o.roundTo === undefined || o.roundTo === 'auto' ? ', the channel multiple this CPU\'s kernels run fastest at' : ''}), which groups of ${Math.min(...widths)}–${Math.max(...widths)} channels can barely lose — --target-macs R meets a MAC budget at these widths; --round-to 1 (or a multiple of 4 or 8) removes closer to the ratio, but widths off the multiple run slower (check with --bench)`;
}

function loopOptions(o: PruneOptions, tuner: FineTuner | undefined): Parameters<typeof pruneStructuredIteratively>[2] {
  const none: FineTuner = {
    finetune: () => Promise.reject(usageError('fine-tuning needs --finetune EPOCHS --data cifar10')),
    gradients: () => Promise.reject(usageError('--importance taylor needs --data cifar10')),
  };
  return {
    tuner: tuner ?? none,
    steps: o.steps,
    epochs: o.finetune ?? 0,
    ...(o.distill ? { distill: true } : {}),
    onStep: async (s, graph) => {
      if (o.steps === 1 && !o.finetune) return;
      const what = s.sparsity !== undefined ? `sparsity ${(s.sparsity * 100).toFixed(1)} %` : `MACs ${formatCount(s.macs)}`;
      log(`step ${s.step}: ${what}${s.testAccuracy !== undefined ? `, test top-1 ${(s.testAccuracy * 100).toFixed(2)} %` : ''} (${s.seconds.toFixed(0)} s)`);
      // Training is the long part: keep the latest step on disk so that a crash loses at most one.
      if (o.finetune) {
        await writeModel(graph, stepFile(o.output!));
        log(`  saved to ${stepFile(o.output!)} (removed when the run finishes)`);
      }
    },
  };
}

async function structured(graph: Graph, o: PruneOptions, tuner: FineTuner | undefined, calibration: Calibration | undefined, shapesFolded: boolean): ReturnType<typeof pruneStructuredIteratively> {
  const target = targetOf(o);
  // The MAC search takes a second or two; the latency search times a model per step.
  const bar = target.kind === 'latency' ? progress('latency search', 9, 'models') : undefined;
  let done = 0;
  const options: StructuredOptions = {
    target,
    importance: o.importance,
    scope: o.scope,
    roundTo: o.roundTo ?? 'auto',
    maxRatio: o.maxRatio,
    seed: o.seed,
    ...(shapesFolded ? { shapesFolded } : {}),
    ...(o.keep ? { keep: o.keep } : {}),
    ...(o.layerRatio ? { layerRatios: o.layerRatio } : {}),
    ...(calibration ? { calibration, compensate: o.compensate, renormalize: o.renormalize } : {}),
    ...(target.kind === 'latency' ? { measureLatency: latencyMeter({ ...(o.threads !== undefined ? { threads: o.threads } : {}) }) } : {}),
    onStep: () => bar?.update(++done),
  };
  // The latency search times candidates against the original: another process's load moves them apart.
  const otherLoad = target.kind === 'latency' ? watchOtherLoad() : undefined;
  try {
    return await pruneStructuredIteratively(graph, options, loopOptions(o, tuner));
  } finally {
    bar?.stop();
    const busy = otherLoadNote(otherLoad?.());
    if (busy) log(`${busy.replace('while timing', 'while the latency search timed candidates')} (the model chosen may differ from run to run)`);
  }
}

function analyze(file: string, loaded: Graph, o: PruneOptions, shapesFolded: boolean): void {
  // What pruneStructured itself sees (a pinned free-size model had its shapes folded before pinning).
  const graph = asPruningSeesIt(loaded, { foldShapes: !shapesFolded });
  const dep = buildDependencyGraph(graph);
  const labels = groupLabels(dep);
  const result = {
    file,
    macs: macsPerImage(graph, dep.facts),
    groups: dep.groups.map((g, i) => ({ root: g.root.node.name, label: labels[i]!, op_type: g.root.node.opType, channels: g.rootChannels, values: [...g.members.keys()], nodes: g.nodes })),
    boundaries: dep.boundaries.map(nodeReasonJson),
    frozen: Object.fromEntries(dep.frozen),
  };
  printResult(o, result, () =>
    [
      `${file}: ${dep.groups.length} prunable channel groups, ${dep.boundaries.length} boundaries`,
      table(['group root', 'op', 'channels', 'nodes (--json lists them)'], dep.groups.map((g, i) => [labels[i]!, g.root.node.opType, g.rootChannels, nodeSummary(graph, g.nodes)])),
      ...(dep.boundaries.length ? ['', 'boundaries (channels are not pruned through these):', ...dep.boundaries.map((b) => `  ${b.node} (${b.opType}): ${b.reason}`)] : []),
    ].join('\n'),
  );
}

/** "36: 7 Conv, 6 MatMul, 3 LayerNormalization, …": how many nodes share a group's channels, by op. */
function nodeSummary(graph: Graph, names: readonly string[]): string {
  const opOf = new Map(graph.nodes.map((n) => [n.name, n.opType]));
  const counts = new Map<string, number>();
  for (const name of names) counts.set(opOf.get(name) ?? '?', (counts.get(opOf.get(name) ?? '?') ?? 0) + 1);
  const byCount = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = byCount.slice(0, 4).map(([op, n]) => `${n} ${op}`);
  return `${names.length}: ${shown.join(', ')}${byCount.length > 4 ? ', …' : ''}`;
}

/** What the sparse row is: a floor, not a file (a trial read "zeros shrink … sparse storage" as a format on offer). */
const SPARSE_BITMAP_NOTE = '² a bitmap of the non-zeros plus their values (N:M where it is cheaper): the size a sparse format could reach — no ONNX runtime reads one, and slimkit writes the dense file; gzip is the saving on disk you get';

function renderSummary(o: PruneOptions, before: ModelStats, after: ModelStats, sparse: number, latency: { before: number; after: number; quartiles?: [number, number] } | undefined, human: string[]): string {
  const pct = (a: number | null, b: number | null): string => (a !== null && b ? `${((a / b) * 100).toFixed(1)} %` : '');
  const rows: (string | number)[][] = [
    ['MACs', formatCount(before.macs), formatCount(after.macs), pct(after.macs, before.macs)],
    ['params', formatCount(before.params), formatCount(after.params), pct(after.params, before.params)],
    ['non-zero params', formatCount(before.nonzeroParams), formatCount(after.nonzeroParams), pct(after.nonzeroParams, before.nonzeroParams)],
    ['file', formatBytes(before.sizeBytes), formatBytes(after.sizeBytes), pct(after.sizeBytes, before.sizeBytes)],
    ['gzip', formatBytes(before.gzipBytes), formatBytes(after.gzipBytes), pct(after.gzipBytes, before.gzipBytes)],
    // Zeros only: a structured cut's would repeat the file row. A format no runtime reads, named so.
    ...(o.unstructured ? [['sparse bitmap (est.)²', '', formatBytes(sparse), pct(sparse, before.sizeBytes)]] : []),
    // The median of per-round ratios, with the middle half of them: a re-measure lands about there.
    ...(latency ? [['batch-1 latency', `${latency.before.toFixed(2)} ms`, `${latency.after.toFixed(2)} ms`, `${pct(latency.after, latency.before)}${latency.quartiles ? ` (half the rounds ${(latency.quartiles[0] * 100).toFixed(1)}–${(latency.quartiles[1] * 100).toFixed(1)} %)` : ''}`]] : []),
  ];
  // "wrote" last, as the other commands say it: after what was done.
  return [...human, '', table(['', 'before', 'after', 'after/before'], rows), ...(o.unstructured ? [SPARSE_BITMAP_NOTE] : []), `wrote ${o.output}`].join('\n');
}
