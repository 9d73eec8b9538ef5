import { epochJson } from '../../report/json-records.js';
import path, { join } from 'node:path';
import { inputError, usageError } from '../../errors.js';
import type { Normalization } from '../../data/types.js';
import type { Graph } from '../../onnx/graph.js';
import { formatPercent } from '../../report/format.js';
import type { QuantizedResult } from '../../compress/quantize/index.js';
import { checkPhasedResume, FOLDED_SEED_OFFSET, phaseFolder, qatRunSettings, quantizationAwareTraining, type QatPhase, type QatSettings } from '../../compress/qat/index.js';
import { flattenScores, unflattenScores } from '../../passes/flat-scores.js';
import { checkImageSize, loadTrainTest, modelInputSize, modelChannels, recordedClasses } from '../../data/model-data.js';
import { recordedResize } from '../../data/model-resize.js';
import { withClassNames } from '../../zoo/metadata.js';
import { log } from '../../util/terminal.js';
import { isCifar10 } from '../../data/cifar10.js';
import { top1, type EvalData } from './quantize-eval.js';
import type { QuantizeCliOptions } from './quantize.js';
import { checkTrainingFlags, explainInterrupt, freshStartNote, leftOverNote, limitsBeyondDataNote, resumedNote, trainingProgress, type InterruptExplainer } from '../train-options.js';
import { CheckpointMismatch, checkpointFingerprint, digestWeights, knownBeforeData, refuseChangedFingerprint, startOver } from '../../engine/resume.js';
import { settingsFingerprint } from '../../engine/train.js';
import { checkpointsIn } from '../paths.js';
import { existsSync } from 'node:fs';

/** --qat needs training data; its training split doubles as the calibration set unless --calib says otherwise. */
export function checkQatFlags(options: QuantizeCliOptions): void {
  const qatOnly = ['data', 'bnEpochs', 'lsq', 'trainLimit', 'testLimit', 'checkpointDir', 'resume', 'log', 'lr'] as const;
  if (!options.qat) {
    const given = qatOnly.find((k) => options[k] !== undefined && options[k] !== false);
    if (!given && options.distill === false) throw usageError('--no-distill only applies with --qat');
    // --data is what every other command reads images from: here calibration images are --calib.
    if (given === 'data' && options.calib === undefined) throw usageError('--data is the training data of --qat; calibration images are --calib', `pass --calib ${options.data} to calibrate on them (--eval-limit N also scores top-1 on its test images), or add --qat to fine-tune on them`);
    // --test-limit is what training calls its test images; scoring the int8 model is --eval-limit here.
    if (given === 'testLimit') throw usageError('--test-limit only applies with --qat (the test images each epoch scores)', 'to score the int8 model on fewer test images, use --eval-limit N; or add --qat to fine-tune it');
    if (given) throw usageError(`--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only applies with --qat`, 'add --qat to fine-tune the int8 model, or drop it');
    return;
  }
  if (options.mode !== 'static') throw usageError('--qat fine-tunes a static int8 model', 'drop --mode, or use --mode static');
  if (options.report) throw usageError('--report analyses post-training quantization', 'run slim quantize --report without --qat for the SQNR / sensitivity report');
  if (options.bnEpochs && options.equalize) throw usageError('--bn-epochs puts the model\'s BatchNormalization back behind the quantized Convs, which --equalize has rescaled', 'drop --equalize, or --bn-epochs');
  if (!options.data) throw usageError('--qat needs training images', 'pass --data cifar10 (with --data-dir) or --data <folder with train/ and test/>');
  checkTrainingFlags(options);
  checkPhasedResume(options.bnEpochs, options.resume);
  options.calib ??= isCifar10(options.data) ? options.data : join(options.data, 'train');
}

/**
 * The training folder's layout, after the usage checks and before any work: its calibration images are
 * read from train/, and a folder without one was blamed on a --calib nobody gave.
 */
export function checkQatData(options: Pick<QuantizeCliOptions, 'qat' | 'data'>): void {
  if (!options.qat || !options.data || isCifar10(options.data) || existsSync(join(options.data, 'train'))) return;
  throw inputError({
    file: options.data,
    problem: existsSync(options.data) ? 'has no train/ subfolder: --qat trains on train/ and scores on test/ (or val/)' : 'does not exist (--data takes cifar10 or a folder with train/ and test/ subfolders)',
    fix: `put the images in ${join(options.data, 'train')}/<class>/… and ${join(options.data, 'test')}/<class>/…, or pass --data cifar10`,
  });
}

/** What the PTQ model QAT starts from was made with: another input model or calibration is another run. */
function qatResumeKey(floatGraph: Graph, options: QuantizeCliOptions): Record<string, unknown> {
  return {
    model_digest: digestWeights(floatGraph),
    calibration: { calib: options.calib, method: options.method, percentile: options.percentile, samples: options.samples, seed: options.seed, per_tensor: options.perTensor ?? false, activations: options.activationType, reduce_range: options.reduceRange ?? false, exclude: options.exclude ?? null, keep_first: options.keepFirst ?? false, keep_last: options.keepLast ?? false, equalize: options.equalize ?? false, bias_correction: options.biasCorrection, max_drop: options.maxDrop ?? null },
  };
}

/** What QAT's checkpoints record as their command: another command's checkpoint is refused by name. */
const QAT_COMMAND = 'slim quantize --qat';

/** The epochs score on as many test images as the before/after comparison (--eval-limit) unless told otherwise. */
const qatTestLimit = (options: QuantizeCliOptions): number | undefined => options.testLimit ?? options.evalLimit;

/** The command's QAT settings, known before calibration: what it trains with and what a checkpoint must share. */
function qatSettings(file: string, floatGraph: Graph, options: QuantizeCliOptions): QatSettings {
  const testLimit = qatTestLimit(options);
  return {
    epochs: options.epochs,
    batch: options.batch,
    optimizer: options.optimizer,
    learnableScales: options.lsq ?? false,
    ...(options.bnEpochs ? { bnEpochs: options.bnEpochs } : {}),
    device: options.device,
    seed: options.seed,
    // The teacher is the model as given (its settings are the defaults).
    ...(options.distill ? { teacher: {} } : {}),
    ...(options.lr !== undefined ? { lr: options.lr } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.trainLimit !== undefined ? { trainLimit: options.trainLimit } : {}),
    ...(testLimit !== undefined ? { testLimit } : {}),
    ...(options.checkpointDir ? { checkpointDir: options.checkpointDir } : {}),
    ...(options.resume !== undefined ? { resume: options.resume } : {}),
    resumeKey: qatResumeKey(floatGraph, options),
    command: QAT_COMMAND,
    ...(options.log ? { log: options.log } : {}),
    file,
  };
}

/**
 * A --resume of a run with other settings (another input model or calibration, --lr, --epochs, --no-distill)
 * is refused before calibrating, not after. Each checkpoint is compared with its own phase's settings; the
 * schedule's split between the phases counts steps and waits for the data.
 */
export async function refuseOtherQatRun(file: string, floatGraph: Graph, options: QuantizeCliOptions): Promise<void> {
  if (!options.resume) return;
  const files = typeof options.resume === 'string' ? (existsSync(options.resume) ? [options.resume] : []) : options.checkpointDir ? checkpointsIn(options.checkpointDir) : [];
  const settings = qatSettings(file, floatGraph, options);
  const phaseOf = (checkpoint: string): QatPhase => {
    const folder = path.basename(path.dirname(checkpoint));
    return (typeof options.resume !== 'string' ? phaseFolder(folder) : undefined) ?? 'whole';
  };
  const saved = new Map(await Promise.all(files.map(async (f) => [f, await checkpointFingerprint(f)] as const)));
  // A phase's checkpoint counts its own epochs: compared as the flags that set them (--bn-epochs, and --epochs once both phases have run).
  const phaseEpochs = (phase: QatPhase): number | undefined => {
    const f = files.find((c) => phaseOf(c) === phase);
    return f ? (saved.get(f)!['epochs'] as number) : undefined;
  };
  const then = { live: phaseEpochs('bn-live'), folded: phaseEpochs('folded') };
  const bnEpochs = options.bnEpochs ?? 0;
  const now = { live: then.live === undefined ? undefined : bnEpochs, folded: then.folded === undefined ? undefined : options.epochs - bnEpochs };
  for (const checkpoint of files) {
    const phase = phaseOf(checkpoint);
    // A run with live BN epochs checkpoints in bn-live/ and folded/, one without in the folder itself.
    if ((phase === 'whole') !== !bnEpochs) {
      throw new CheckpointMismatch(['schedulePhase'], {
        file: checkpoint,
        problem: `the checkpoint was made by a run ${bnEpochs ? 'without' : 'with'} --bn-epochs, and this one has ${bnEpochs ? `--bn-epochs ${bnEpochs}` : 'none'}`,
        fix: `resume with the same options as then, or ${startOver(options)}`,
      });
    }
    // A phase's own epochs are compared as the flags (asGiven): a run now without a folded phase (--bn-epochs
    // equal to --epochs) has none to count.
    const own = qatRunSettings(settings, phase);
    const fingerprint = settingsFingerprint(phase === 'whole' ? own : { ...own, epochs: Math.max(own.epochs, 1) });
    refuseChangedFingerprint(checkpoint, asGiven(saved.get(checkpoint)!, phase, then), asGiven(fingerprint, phase, now), { ...options, command: QAT_COMMAND }, (k) => knownBeforeData(k) && k !== 'schedulePhase');
  }
}

/**
 * A phase's fingerprint in the flags that set it: its epochs as --bn-epochs and --epochs (both phases
 * known; else the folded phase's own count), the folded phase's seed as --seed.
 */
function asGiven(fingerprint: Record<string, unknown>, phase: QatPhase, epochs: { live: number | undefined; folded: number | undefined }): Record<string, unknown> {
  if (phase === 'whole') return fingerprint;
  const { epochs: _phase, seed, ...rest } = fingerprint;
  const { live, folded } = epochs;
  return {
    ...rest,
    seed: phase === 'folded' && typeof seed === 'number' ? seed - FOLDED_SEED_OFFSET : seed,
    ...(live !== undefined ? { bnEpochs: live } : {}),
    ...(live !== undefined && folded !== undefined ? { epochs: live + folded } : folded !== undefined ? { foldedEpochs: folded } : {}),
  };
}

export interface QatStep {
  graph: Graph;
  summary: Record<string, unknown>;
  /** Says what a Ctrl-C now keeps until the caller has written the model (then: written(), stop()). */
  interrupt: InterruptExplainer;
}

/** Quantization-aware training from the PTQ result (same placement and calibration), then export. */
export async function qatFineTune(
  file: string,
  floatGraph: Graph,
  ptq: QuantizedResult,
  options: QuantizeCliOptions,
  normalization: Normalization,
  evalData: EvalData | undefined,
  /** This CPU's int8 sums saturate for the model written (quantize's scoredSaturating). */
  saturates: boolean,
): Promise<QatStep> {
  // The epochs score on as many test images as the before/after comparison (--eval-limit) unless told otherwise:
  // a 64-image comparison beside a 10,000-image evaluation per epoch (minutes for a large model on a CPU) is no one's intent.
  const testLimit = qatTestLimit(options);
  const data = await loadTrainTest(options.data!, { ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(modelInputSize(floatGraph) ? { size: modelInputSize(floatGraph)! } : {}), channels: modelChannels(floatGraph), trainLimit: options.trainLimit, testLimit, classes: recordedClasses(floatGraph, file, { trains: (n) => `give --data images of all ${n.model} classes (quantizing without --qat calibrates on any of them)` }), recordedResize: recordedResize(floatGraph, file) });
  checkImageSize(floatGraph, data.train, file, '--data');
  // PTQ's accuracy, for the comparison the user is paying the training for.
  const ptqTop1 = evalData ? await top1(ptq.graph, evalData, normalization, options.threads, 'eval int8 (PTQ)') : undefined;
  for (const note of [leftOverNote(data.train.labels.length, options.trainLimit, options.batch), limitsBeyondDataNote({ train: data.train.labels.length, test: data.test.labels.length }, options), freshStartNote(options)]) if (note) log(note);
  const bar = trainingProgress('qat', undefined, { distilled: options.distill ?? false });
  const interrupt = explainInterrupt('slim quantize --qat', options);
  // Scores shaped [N, classes, 1, 1] are trained as [N, classes], behind a Flatten put after quantization.
  const scores = flattenScores(ptq.graph);
  const flat = (g: Graph): Graph => (scores.original ? flattenScores(g).graph : g);
  const { teacher: _soft, ...settings } = qatSettings(file, floatGraph, options);
  const r = await quantizationAwareTraining({
    ...settings,
    graph: scores.graph,
    float: flat(ptq.float),
    data,
    ...(options.bnEpochs ? { unfolded: flat(floatGraph) } : {}),
    // The preprocessing calibration and the scores use (--mean/--std, else the model's, else CIFAR-10's).
    normalization,
    onProgress: bar.onProgress,
    onEpoch: bar.onEpoch,
    // The teacher is the model as given, not PTQ's bias-corrected float graph.
    ...(options.distill ? { teacher: { graph: flat(ptq.reference) } } : {}),
  }).catch((e: unknown) => {
    interrupt.stop();
    throw e;
  }).finally(() => bar.stop());
  interrupt.trained(options.output);
  for (const w of r.warnings) log(`warning: ${w}`);
  // Where this CPU's int8 sums saturate, ONNX Runtime's score of the written model here is lower by more than rounding.
  log(`qat: ${r.history.length} epoch(s) in ${r.seconds.toFixed(1)} s, engine top-1 ${formatPercent(r.testAccuracy)} (fake-quantized in float; the written int8 model is scored by ONNX Runtime's integer kernels, which ${saturates ? "on this CPU saturate (see the note above): its top-1 here can be several points lower, and on exact kernels (arm64, VNNI x64, the browser) within a few images in a hundred of this" : 'round in integers where the engine rounds in float: a few images in a hundred can score differently'})`);
  for (const line of resumedNote(r.resumedFrom, options.epochs)) log(`qat:${line.slice(1)}`);
  return {
    interrupt,
    // Trained on the data's labels: the model records their names (the ones it recorded, when it did).
    graph: withClassNames(scores.original ? unflattenScores(r.graph, scores.original) : r.graph, data.train.classes),
    summary: {
      epochs: r.history.length,
      steps: r.steps,
      learnable_scales: options.lsq ?? false,
      distilled: options.distill ?? false,
      engine_top1: r.testAccuracy,
      ...(r.resumedFrom !== undefined ? { resumed_from_epoch: r.resumedFrom } : {}),
      ...(ptqTop1 !== undefined ? { top1_ptq: ptqTop1 } : {}),
      seconds: r.seconds,
      gpu_seconds: r.gpuSeconds,
      estimated_cost: r.estimatedCost,
      ...(r.warnings.length ? { warnings: r.warnings } : {}),
      history: r.history.map(epochJson),
    },
  };
}
