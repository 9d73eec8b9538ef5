import { existsSync } from 'node:fs';
import { appendFile, mkdir, open, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { SlimError, option, usageError } from '../errors.js';
import { checkNormalization, imageSizeOf, type ImageSet, type Normalization } from '../data/types.js';
import type { Graph } from '../onnx/graph.js';
import { fileError } from '../onnx/io.js';
import { hasIntegerWeights, integerWeightsError } from '../passes/freeze-layers.js';
import { normalizationOf } from '../zoo/metadata.js';
import { epochJson, snakeSettings } from '../report/json-records.js';
import { writeCheckpoint } from './checkpoint.js';
import { whileRunning } from './exit-gate.js';
import { digest, digestArrays, digestWeights, refuseChangedSettings, restore, type CheckpointMeta } from './resume.js';
import { batchOf, planEpoch, type EpochAugment } from './epoch.js';
import { loadNative, type AutocastName, type DeviceName, type NativeOptimizerConfig } from './native.js';
import { DeviceImageSet, EnginePlan } from './plan.js';
import { checkModelFitsData } from './data-fit.js';
import { makeSchedule, type ScheduleName } from './schedule.js';
import { TeacherLogits } from './teacher-cache.js';
import type { DistributedHooks } from './distributed.js';

/**
 * `trainModel`: the training loop. JS decides what each step sees (batch indices, crop placements,
 * learning rate) and awaits one native step at a time; everything per-pixel and per-op runs in the
 * addon. Checkpoints at each epoch end make any run resumable to the same weights.
 */

export interface TrainOptions {
  graph: Graph;
  data: { train: ImageSet; test: ImageSet };
  epochs: number;
  batch: number;
  device?: DeviceName;
  /** Peak learning rate (default 0.1 for SGD, 0.001 for AdamW). */
  lr?: number;
  optimizer?: 'sgd' | 'adamw';
  /** SGD momentum (default 0.9). */
  momentum?: number;
  nesterov?: boolean;
  /** Default 5e-4 for SGD, 0.05 for AdamW. */
  weightDecay?: number;
  /** Apply weight decay to BN scale/shift and biases too (default false, the usual recipe). */
  decayAll?: boolean;
  schedule?: ScheduleName;
  /** OneCycle rise / cosine warm-up fraction. */
  warmup?: number;
  labelSmoothing?: number;
  seed?: number;
  /** Train on the first N training images only. */
  trainLimit?: number;
  /** Evaluate on the first N test images only. */
  testLimit?: number;
  threads?: number;
  /** Random crop padding and flip (default {crop: 4, flip: true}); false turns augmentation off. */
  augment?: EpochAugment | false;
  /** Default: the model's metadata, else CIFAR-10 statistics. */
  normalization?: Normalization;
  /** bf16 autocast is the default on CUDA; on CPU bf16 pays where the CPU has AMX (see precision.ts). */
  autocast?: AutocastName;
  /** Default: on with CUDA or autocast (NHWC is what cuDNN's and oneDNN's low-precision kernels want). */
  channelsLast?: boolean;
  /** CUDA + SGD, one process: replay a captured CUDA graph of the step (PlanOptions.cudaGraphs). */
  cudaGraphs?: boolean;
  evalBatch?: number;
  /** Folder for `last.ckpt`, written atomically after every epoch. */
  checkpointDir?: string;
  /** true: continue from `<checkpointDir>/last.ckpt` when it exists; a string: from that file. */
  resume?: boolean | string;
  /** For the cost estimate of CUDA runs (default 2.5 per GPU-hour). */
  gpuPricePerHour?: number;
  /**
   * Knowledge distillation from a teacher run in eval mode on the same batches. `cache`: run the
   * teacher once over the unaugmented training images and reuse its logits (needs augment: false).
   */
  teacher?: { graph: Graph; temperature?: number; alpha?: number; cache?: boolean };
  /** Fixed 0/1 masks multiplied into weights after every update (pruning). */
  masks?: ReadonlyMap<string, Float32Array>;
  /** Parameters to keep fixed. */
  frozen?: ReadonlySet<string>;
  /**
   * The model the run starts from as the user gave it (before BN re-insertion or calibration): its weights
   * go into the checkpoint's fingerprint, so a checkpoint resumes only a run from the same model — not
   * another file of the same architecture. Default: `graph`.
   */
  origin?: Graph;
  /** The starting weights are drawn from --seed (a zoo model built fresh), so another seed explains other ones. */
  seededStart?: boolean;
  /** Settings of the caller that change the trajectory beyond these options (e.g. a replaced head): a checkpoint resumes only a run with the same. */
  resumeKey?: Record<string, unknown>;
  /** The command that trains ('slim train', 'slim distill', …): another command's checkpoint is refused by that name. */
  command?: string;
  /** Float initializers to train besides the ones the lowerings name (QAT: weights behind a QuantizeLinear). */
  trainable?: ReadonlySet<string>;
  /** Train the scales of QuantizeLinear → DequantizeLinear pairs (LSQ). */
  learnableScales?: boolean;
  /**
   * This run is one phase of a longer one (QAT: BatchNorm live, then folded): the learning-rate schedule
   * spans `before` + this run's steps + `after` steps, and this run takes its part from step `before`.
   */
  schedulePhase?: { before: number; after: number };
  /** JSON-lines log file: one record per epoch plus start/end events. */
  log?: string;
  /** Called once, before the first step, when the run continues a checkpoint: the epochs it had finished. */
  onResumed?: (epochs: number) => void;
  /**
   * A trained model being fine-tuned (a model file, a pruned or quantized one): score it on the test images
   * before the first step, as every epoch is scored. Logged as a 'start_eval' record (slim curves draws it
   * at epoch 0), passed to `onStartScored` and returned as `startAccuracy`. Not on a resumed run.
   */
  scoreStart?: boolean;
  onStartScored?: (top1: number) => void;
  /**
   * This run is one named phase of a longer one (QAT: BatchNorm live, then folded): its log records name
   * the phase and count the longer run's epochs and steps, and a phase before the last ends with
   * `phase_end`, so one log reads as one run.
   */
  logPhase?: { name: string; epochsBefore: number; stepsBefore: number; epochs: number; last: boolean };
  onProgress?: (p: TrainProgress) => void;
  /** After each epoch's evaluation (and checkpoint): its record, epochs counted as the log counts them. */
  onEpoch?: (e: EpochRecord) => void;
  /** Named in errors. */
  file?: string;
  /** Run as one rank of a data-parallel group (distributed.ts): sharded batches, reduced gradients, rank 0 writes. */
  distributed?: DistributedHooks;
}

export interface TrainProgress {
  phase: 'train' | 'eval';
  /** The epoch under way, counted from 0 (the first epoch is 0 of `epochs`). */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch, from 1 to `stepsPerEpoch`. */
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  lr: number;
  /** Running means over the epoch so far. */
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  etaSeconds: number;
  /** In the 'eval' phase: test images scored so far, of how many (absent when a data-parallel group evaluates). */
  evaluated?: { done: number; total: number };
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  lr: number;
  /** Wall time of the epoch, evaluation included. */
  seconds: number;
  /** Wall time of its training steps alone. */
  trainSeconds: number;
  imagesPerSecond: number;
}

export interface TrainResult {
  /**
   * The trained graph: parameters and BN running statistics written into its initializers, BatchNorm not
   * folded (foldBatchNorm makes the inference model) and the data's class names not recorded
   * (withClassNames(graph, data.train.classes) does, as slim train writes them).
   */
  graph: Graph;
  history: EpochRecord[];
  /** Test top-1 after the last epoch, in [0, 1]. */
  testAccuracy: number;
  /** Training wall time of this run (resumed runs add the earlier time). */
  seconds: number;
  /** GPU-seconds of every rank, resumed runs' included (0 on the CPU); `estimatedCost` is priced from it. */
  gpuSeconds: number;
  estimatedCost: number;
  steps: number;
  resumedFrom?: number;
  /** Test top-1 before the first step (TrainOptions.scoreStart), in [0, 1]. */
  startAccuracy?: number;
}

/** A running loss this many times chance level stops the run as diverged. */
const DIVERGENCE_FACTOR = 5;

/**
 * Chance level of the training loss: ln(classes) for cross-entropy. Distillation's loss is
 * α·CE + (1 − α)·T²·KL, and KL against a student that knows nothing reaches ln(classes) too, so its
 * chance level is T² times larger in the soft part (T = 4, α = 0.5: 8.5·ln 10 = 19.6, a healthy first
 * step that a plain 5·ln 10 = 11.5 bound took for a blow-up).
 */
export function chanceLoss(classes: number, distill?: { temperature: number; alpha: number }): number {
  const ce = Math.log(Math.max(2, classes));
  // Below T = 1 the soft term's KL grows like 1/T as the softmaxes sharpen, so T²·KL like T, not T².
  const t = distill?.temperature ?? 1;
  return distill ? ce * (distill.alpha + (1 - distill.alpha) * Math.max(t ** 2, t)) : ce;
}

interface Resolved {
  device: DeviceName;
  optimizer: NativeOptimizerConfig;
  lr: number;
  schedule: ScheduleName;
  seed: number;
  labelSmoothing: number;
  augment: EpochAugment | undefined;
  normalization: Normalization;
  distill: { temperature: number; alpha: number; cache?: true } | undefined;
}

/** --cuda-graphs captures one fixed step: say up front which settings it cannot follow. */
function checkCudaGraphs(o: TrainOptions, optimizer: 'sgd' | 'adamw'): void {
  const graphs = option('--cuda-graphs');
  const without = `or train without ${graphs}`;
  if ((o.device ?? 'cpu') !== 'cuda') throw usageError(`${graphs} needs ${option('--device', 'cuda')}`, without);
  if (optimizer !== 'sgd') throw usageError(`${graphs} supports ${option('--optimizer', 'sgd')} only (AdamW's bias correction changes every step)`, `use sgd, ${without}`);
  if (o.distributed) throw usageError(`${graphs} does not work with data-parallel training (--nproc) yet`, without);
  if (o.teacher?.cache) throw usageError(`${graphs} cannot take cached teacher logits`, `let the teacher run on every batch, ${without}`);
  if (!loadNative().info().cudaGraphs) {
    throw usageError('this build of the training addon has no CUDA graph support (it needs CUDA LibTorch and the CUDA runtime headers)',
      `set CUDA_HOME to the CUDA toolkit and rebuild with \`npm run build:native\`, ${without}`);
  }
}

/** What a command knows of a run before it builds the model and reads the data: no graph, no images. */
export type RunSettings = Omit<TrainOptions, 'graph' | 'data' | 'teacher'> & { teacher?: Omit<NonNullable<TrainOptions['teacher']>, 'graph'> };

function resolve(o: TrainOptions): Resolved {
  const settings = resolveSettings(o);
  if (o.cudaGraphs) checkCudaGraphs(o, o.optimizer ?? 'sgd');
  return {
    ...settings,
    normalization: o.normalization ? (checkNormalization(o.normalization), o.normalization) : normalizationOf(o.graph, o.file),
  };
}

function resolveSettings(o: RunSettings): Omit<Resolved, 'normalization'> {
  const positiveInt = (v: number, flag: string): void => {
    if (!Number.isInteger(v) || v < 1) throw usageError(`${option(flag)} must be a whole number ≥ 1, got ${v}`);
  };
  positiveInt(o.epochs, '--epochs');
  positiveInt(o.batch, '--batch');
  const kind = o.optimizer ?? 'sgd';
  if (kind !== 'sgd' && kind !== 'adamw') throw usageError(`unknown optimizer '${String(kind)}'`, 'use sgd or adamw');
  const labelSmoothing = o.labelSmoothing ?? 0;
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw usageError(`${option('--label-smoothing')} must be in [0, 1), got ${labelSmoothing}`);
  return {
    device: o.device ?? 'cpu',
    optimizer: {
      kind,
      weightDecay: o.weightDecay ?? (kind === 'sgd' ? 5e-4 : 0.05),
      // Nesterov by default; without momentum there is none to look ahead with (torch refuses the pair).
      ...(kind === 'sgd' ? { momentum: o.momentum ?? 0.9, nesterov: (o.nesterov ?? true) && (o.momentum ?? 0.9) > 0 } : {}),
    },
    lr: o.lr ?? (kind === 'sgd' ? 0.1 : 1e-3),
    schedule: o.schedule ?? 'onecycle',
    seed: o.seed ?? 0,
    labelSmoothing,
    augment: o.augment === false ? undefined : (o.augment ?? { crop: 4, flip: true }),
    distill: o.teacher ? { temperature: o.teacher.temperature ?? 4, alpha: o.teacher.alpha ?? 0.5, ...(o.teacher.cache ? { cache: true as const } : {}) } : undefined,
  };
}

/** bf16 autocast on CUDA, none on CPU. */
const defaultAutocast = (device: DeviceName): AutocastName => (device === 'cuda' ? 'bf16' : 'none');

/**
 * The fingerprint entries that follow from a run's settings alone. A command compares them with a
 * checkpoint's before it reads the data (resume.ts: refuseChangedSettings); trainModel adds those of the
 * model and the images.
 */
export function settingsFingerprint(o: RunSettings): Record<string, unknown> {
  const r = resolveSettings(o);
  const autocast = o.autocast ?? defaultAutocast(r.device);
  return {
    epochs: o.epochs,
    lr: r.lr,
    schedule: r.schedule,
    optimizer: r.optimizer,
    labelSmoothing: r.labelSmoothing,
    seed: r.seed,
    augment: r.augment ?? null,
    teacher: r.distill ?? null,
    ...(o.schedulePhase ? { schedulePhase: o.schedulePhase } : {}),
    // Named only when set, so checkpoints of runs without them still resume.
    ...(o.warmup !== undefined ? { warmup: o.warmup } : {}),
    ...(o.decayAll ? { decayAll: true } : {}),
    // The device's default (bf16 on CUDA, none on CPU) stays unnamed, as in checkpoints made before.
    ...(autocast !== defaultAutocast(r.device) ? { autocast } : {}),
    ...(o.learnableScales ? { learnableScales: true } : {}),
    ...(o.resumeKey ? { caller: o.resumeKey } : {}),
    ...(o.command ? { command: o.command } : {}),
  };
}

/**
 * A --resume whose checkpoint was made with other settings is refused before the command reads the data
 * and builds the model (a new head would be announced, minutes of images decoded, only to be refused).
 */
export async function refuseOtherRun(settings: RunSettings): Promise<void> {
  const file = typeof settings.resume === 'string' ? settings.resume : settings.resume && settings.checkpointDir ? path.join(settings.checkpointDir, 'last.ckpt') : undefined;
  if (file && existsSync(file)) await refuseChangedSettings(file, settingsFingerprint(settings), settings);
}

/** Whether `file` exists and its last byte is not a newline. */
async function endsMidLine(file: string): Promise<boolean> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size === 0) return false;
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      return last[0] !== 0x0a;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

/**
 * Trains `graph` on `data` in the LibTorch addon (nativeAvailable() says whether it loaded): SGD with
 * OneCycle by default, random crop + flip, a test top-1 after every epoch, checkpoints with `checkpointDir`
 * (and `resume`). Refuses a model that does not fit the data before the first step.
 */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  checkModelFitsData(o.graph, o.data, { ...(o.file ? { file: o.file } : {}), ...(o.trainLimit !== undefined ? { trainLimit: o.trainLimit } : {}), ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}) });
  const r = resolve(o);
  if (r.distill?.cache && r.augment) {
    throw usageError('cached teacher logits belong to the unaugmented training images', 'train without augmentation (augment: false, --no-augment), or let the teacher run on every batch');
  }
  const autocast = o.autocast ?? defaultAutocast(r.device);
  // fp16's 5-bit exponent needs loss scaling (PyTorch's GradScaler): small gradients underflow to zero
  // and an overflowing step would be applied. bf16 has fp32's range and needs none.
  if (autocast === 'fp16') {
    throw usageError(
      'fp16 training needs loss scaling, which the engine does not do: small gradients would vanish and overflowing steps would be applied',
      'use --precision bf16 (every GPU since Ampere: A100, A10, L4, H100) or fp32',
    );
  }
  const channelsLast = o.channelsLast ?? (r.device === 'cuda' || autocast !== 'none');
  // A free-size model trains at the data's size (its shape computations fold there).
  const imageSize = imageSizeOf(o.data.train);
  const plan = EnginePlan.create(o.graph, {
    device: r.device,
    imageSize,
    autocast,
    decayOnlyWeights: !o.decayAll,
    ...(o.file ? { file: o.file } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    channelsLast,
    ...(o.cudaGraphs ? { cudaGraphs: true } : {}),
    ...(o.frozen ? { frozen: o.frozen } : {}),
    ...(o.trainable ? { trainable: o.trainable } : {}),
    ...(o.learnableScales ? { learnableScales: true } : {}),
    ...(o.distributed?.syncBatchNorm ? { syncBatchNorm: true } : {}),
  });
  if (plan.paramNames.length === 0 && !o.learnableScales) {
    // A QDQ model's weights are integer constants behind DequantizeLinear: nothing for SGD to move.
    if (hasIntegerWeights(o.graph)) throw integerWeightsError(o.file);
    throw new SlimError({
      ...(o.file ? { file: o.file } : {}),
      problem: 'nothing in it can train: it has no float weights the engine updates',
      fix: 'check that the model has weights (initializers) and that --freeze leaves some',
    }, 'usage');
  }
  let teacher = o.teacher ? EnginePlan.create(o.teacher.graph, { device: r.device, autocast, channelsLast, imageSize }) : undefined;
  plan.setOptimizer(r.optimizer);
  for (const [name, mask] of o.masks ?? []) plan.setMask(name, mask);

  const upload = (set: ImageSet, pad: number, limit: number | undefined): DeviceImageSet =>
    DeviceImageSet.upload(set, { device: r.device, normalization: r.normalization, pad, ...(limit ? { limit } : {}) });
  const train = upload(o.data.train, r.augment?.crop ?? 0, o.trainLimit);
  const dist = o.distributed;
  const test = dist ? upload(dist.evalShard(o.data.test, o.testLimit), 0, undefined) : upload(o.data.test, 0, o.testLimit);
  // One teacher pass over the training images; steps then read their rows instead of running it.
  const cached = teacher && r.distill?.cache ? await TeacherLogits.compute(teacher, train, { batch: o.evalBatch ?? 512 }) : undefined;
  if (cached) teacher = undefined;
  const batch = Math.min(o.batch, train.count);
  if (batch < 1) throw usageError('the training set is empty', 'check --data and --train-limit');
  const stepsPerEpoch = Math.floor(train.count / batch);
  const totalSteps = stepsPerEpoch * o.epochs;
  const phase = o.schedulePhase ?? { before: 0, after: 0 };
  const schedule = makeSchedule({ name: r.schedule, lr: r.lr, totalSteps: phase.before + totalSteps + phase.after, ...(o.warmup !== undefined ? { warmup: o.warmup } : {}) });
  const lrAt = (s: number): number => schedule(phase.before + s);
  // A running loss this far above chance means the run has blown up, even before it turns NaN.
  const divergedAbove = DIVERGENCE_FACTOR * chanceLoss(o.data.train.classes.length, r.distill);

  // Everything that changes the trajectory: a checkpoint only resumes a run with the same values.
  const fingerprint = {
    graph: o.graph.name,
    params: plan.paramNames.length,
    ...settingsFingerprint(o),
    batch,
    trainCount: train.count,
    ...(o.frozen?.size ? { frozen: digest([...o.frozen].sort()) } : {}),
    ...(o.trainable ? { trainable: digest([...o.trainable].sort()) } : {}),
    ...(o.masks?.size ? { masks: digestArrays(o.masks) } : {}),
    // Which model and which teacher, by their weights: another file would silently continue the run.
    startWeights: digestWeights(o.origin ?? o.graph),
    ...(o.teacher ? { teacherWeights: digestWeights(o.teacher.graph) } : {}),
  };
  const checkpointPath = o.checkpointDir ? path.join(o.checkpointDir, 'last.ckpt') : undefined;
  // Ranks must also read the same images: each scores its shard of the test split as its own limit cuts it.
  if (dist) await dist.attach(plan, { ...fingerprint, testLimit: o.testLimit ?? null, data: dataDigest(o.data) });
  const start = dist ? await dist.restore(plan, () => restore(o, plan, fingerprint, checkpointPath)) : await restore(o, plan, fingerprint, checkpointPath);
  const writer = dist?.writer ?? true;
  const history = start.history;
  if (start.resumedFrom !== undefined && writer) o.onResumed?.(start.resumedFrom);
  if (checkpointPath && writer) await mkdir(path.dirname(checkpointPath), { recursive: true });
  // A log cut short mid-line (a full disk, a kill during the write) gets its next record on a line of its own.
  let logSeparator = o.log && writer ? await endsMidLine(o.log) : false;
  const logPhase = o.logPhase;
  const log = async (record: Record<string, unknown>): Promise<void> => {
    if (!o.log || !writer) return;
    const placed = logPhase ? { ...record, phase: logPhase.name } : record;
    const line = `${logSeparator ? '\n' : ''}${JSON.stringify({ time: new Date().toISOString(), ...placed })}\n`;
    const sizeBefore = await stat(o.log).then((st) => st.size, () => 0);
    await appendFile(o.log, line).catch(async (e: unknown) => {
      // A full disk takes part of a line: cut it off again, so the log holds whole records only.
      const cut = await truncate(o.log!, sizeBefore).then(() => true, () => false);
      logSeparator = !cut;
      throw fileError(o.log!, e, 'write');
    });
    logSeparator = false;
  };
  // The fingerprint's `params` counts tensors (kept so older checkpoints resume); the log names both counts.
  const { params: parameterTensors, ...settings } = fingerprint;
  const logged = (e: EpochRecord): EpochRecord => (logPhase ? { ...e, epoch: e.epoch + logPhase.epochsBefore } : e);
  await log({
    event: start.resumedFrom !== undefined ? 'resume' : 'start', epoch: start.epoch + (logPhase?.epochsBefore ?? 0), ...snakeSettings(settings),
    ...(logPhase ? { epochs: logPhase.epochs, phase_epochs: o.epochs } : {}),
    parameters: plan.parameterCount, parameter_tensors: parameterTensors, device: r.device,
    total_steps: logPhase ? stepsPerEpoch * logPhase.epochs : totalSteps,
    // The checkpoint's last epoch: a kill between writing it and logging it left no 'epoch' record of it.
    ...(start.resumedFrom !== undefined && history.length > 0 ? { last_epoch: epochJson(logged(history.at(-1)!)) } : {}),
  });
  // Checkpoints are written only after a finite evaluation, so the file on disk is always a good epoch.
  const kept = (): string =>
    checkpointPath && existsSync(checkpointPath)
      ? `the last good checkpoint${history.length ? ` (epoch ${history.length})` : ''} is ${checkpointPath}, untouched`
      : 'no checkpoint was written';

  const runStart = performance.now();
  const gpuSecondsSoFar = (): number => runGpuSeconds(r.device, dist?.worldSize ?? 1, start, (performance.now() - runStart) / 1000);
  let firstStepEnd: number | undefined;
  // Evaluation and checkpoints between epochs are not training: the img/s shown leaves them out (a trial's
  // bar showed 116 img/s for epochs that trained at 159).
  let lastStepEnd: number | undefined;
  let betweenEpochsMs = 0;
  let step = start.step;
  let lossEma: number | undefined;
  // Where a fine-tune starts from, on the images every epoch is scored on: each phase of an iterative
  // prune starts from a new cut (logged at the epoch it starts from); a QAT's later phase asks for none.
  let startAccuracy: number | undefined;
  if (o.scoreStart && start.resumedFrom === undefined) {
    const startProgress = (evaluated?: { done: number; total: number }): void =>
      o.onProgress?.({
        phase: 'eval', epoch: -1, epochs: o.epochs, step: 0, stepsPerEpoch, globalStep: step, totalSteps, lr: lrAt(step),
        loss: Number.NaN, accuracy: Number.NaN, imagesPerSecond: 0, etaSeconds: 0, ...(evaluated ? { evaluated } : {}),
      });
    startProgress(dist ? undefined : { done: 0, total: test.count });
    const scored = dist
      ? await dist.evaluate(plan, test, { batch: o.evalBatch ?? 512 })
      : await plan.evaluateInChunks(test, o.evalBatch ?? 512, (done, total) => startProgress({ done, total }));
    startAccuracy = scored.correct / Math.max(scored.count, 1);
    await log({ event: 'start_eval', epoch: logPhase?.epochsBefore ?? 0, test_loss: Number.isFinite(scored.loss) ? scored.loss : null, test_top1: startAccuracy });
    if (writer) o.onStartScored?.(startAccuracy);
  }
  for (let epoch = start.epoch; epoch < o.epochs; epoch++) {
    const epochStart = performance.now();
    if (lastStepEnd !== undefined) betweenEpochsMs += epochStart - lastStepEnd;
    const order = planEpoch(train.count, { seed: r.seed, epoch, ...(r.augment ? { augment: r.augment } : {}), imageSize: [o.data.train.imageShape[1], o.data.train.imageShape[2]] });
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let lr = lrAt(step);
    for (let b = 0; b < stepsPerEpoch; b++, step++) {
      lr = lrAt(step);
      // The dropout seed is a function of the step, so a resumed run draws the same masks.
      const options = { lr, labelSmoothing: r.labelSmoothing, seed: (r.seed * 1_000_003 + step) % 2 ** 31, ...r.distill };
      const indices = dist ? dist.shard(batchOf(order, b, batch)) : batchOf(order, b, batch);
      const stepOptions = cached ? { ...options, targets: cached.rows(indices.indices) } : options;
      const result = dist
        ? await dist.trainStep(plan, train, indices, stepOptions, teacher, { step, batch })
        : await plan.trainStep(train, indices, stepOptions, teacher);
      lossEma = lossEma === undefined ? result.loss : 0.9 * lossEma + 0.1 * result.loss;
      if (!Number.isFinite(result.loss) || lossEma > divergedAbove) {
        // Counted as the message counts them, from 1 (the epoch records count from 1 too).
        await log({ event: 'diverged', epoch: epoch + 1 + (logPhase?.epochsBefore ?? 0), step: b + 1, global_step: step + 1 + (logPhase?.stepsBefore ?? 0), loss: result.loss });
        throw new SlimError({
          ...(o.file ? { file: o.file } : {}),
          where: `epoch ${epoch + 1}, step ${b + 1}`,
          problem: `training diverged (loss ${result.loss}${Number.isFinite(result.loss) ? `, running mean ${lossEma.toFixed(2)}` : ''}); ${kept()}`,
          fix: 'lower --lr (or raise --warmup) and train again',
        });
      }
      lossSum += result.loss * result.count;
      correct += result.correct;
      seen += result.count;
      if (o.onProgress) {
        const now = performance.now();
        const elapsed = (now - runStart) / 1000;
        const doneHere = step + 1 - start.step;
        // The speed from the end of the first step on: that step carries the warm-up (allocations,
        // kernel selection) and showed ~10 img/s on a net that runs at 500.
        if (firstStepEnd === undefined) [firstStepEnd, betweenEpochsMs] = [now, 0];
        const steady = doneHere > 1 ? ((doneHere - 1) * batch) / Math.max((now - firstStepEnd - betweenEpochsMs) / 1000, 1e-9) : batch / Math.max(elapsed, 1e-9);
        o.onProgress({
          phase: 'train', epoch, epochs: o.epochs, step: b + 1, stepsPerEpoch, globalStep: step + 1, totalSteps, lr,
          loss: lossSum / seen, accuracy: correct / seen,
          imagesPerSecond: steady,
          etaSeconds: (elapsed / doneHere) * (totalSteps - step - 1),
        });
      }
    }
    lastStepEnd = performance.now();
    const trainSeconds = (lastStepEnd - epochStart) / 1000;
    const trainLoss = lossSum / Math.max(seen, 1);
    const trainAccuracy = correct / Math.max(seen, 1);
    const evalProgress = (evaluated?: { done: number; total: number }): void =>
      o.onProgress?.({
        phase: 'eval', epoch, epochs: o.epochs, step: stepsPerEpoch, stepsPerEpoch, globalStep: step, totalSteps, lr,
        loss: trainLoss, accuracy: trainAccuracy, imagesPerSecond: seen / trainSeconds, etaSeconds: 0, ...(evaluated ? { evaluated } : {}),
      });
    evalProgress(dist ? undefined : { done: 0, total: test.count });
    const evaluation = dist
      ? await dist.evaluate(plan, test, { batch: o.evalBatch ?? 512 })
      : await plan.evaluateInChunks(test, o.evalBatch ?? 512, (done, total) => evalProgress({ done, total }));
    if (!Number.isFinite(evaluation.loss)) {
      throw new SlimError({
        where: `epoch ${epoch + 1}`,
        problem: `the test loss is ${evaluation.loss}: the weights have blown up; ${kept()}`,
        fix: 'lower --lr and train again',
      });
    }
    const record: EpochRecord = {
      epoch: epoch + 1,
      trainLoss,
      trainAccuracy,
      testLoss: evaluation.loss,
      testAccuracy: evaluation.correct / Math.max(evaluation.count, 1),
      lr,
      seconds: (performance.now() - epochStart) / 1000,
      trainSeconds,
      imagesPerSecond: seen / trainSeconds,
    };
    history.push(record);
    if (checkpointPath && writer) {
      const seconds = start.seconds + (performance.now() - runStart) / 1000;
      const meta: CheckpointMeta = { version: 1, epoch: epoch + 1, step, fingerprint, history, seconds, gpuSeconds: gpuSecondsSoFar() };
      // Under the exit gate: Ctrl-C while it is written waits for it (a trial lost a finished epoch there).
      await whileRunning(() => writeCheckpoint(checkpointPath, { meta, weights: plan.weights(), optimizer: plan.optimizerState() })).catch((e: unknown) => {
        if (!(e instanceof SlimError)) throw e;
        const kept = epoch > 0 ? `it still holds epoch ${epoch}, untouched: free space, then run the same command with --resume` : 'no epoch was kept: free space and run again';
        throw new SlimError({ ...e.parts, fix: kept }, e.kind);
      });
    }
    // Logged once kept: a resumed run's log then names each epoch once.
    await log({ event: 'epoch', ...epochJson(logged(record)) });
    o.onEpoch?.(logged(record));
  }

  const seconds = start.seconds + (performance.now() - runStart) / 1000;
  const gpuSeconds = gpuSecondsSoFar();
  const result: TrainResult = {
    graph: plan.toGraph(),
    history,
    testAccuracy: history.at(-1)?.testAccuracy ?? 0,
    seconds,
    gpuSeconds,
    estimatedCost: (gpuSeconds / 3600) * (o.gpuPricePerHour ?? 2.5),
    steps: step,
    ...(start.resumedFrom !== undefined ? { resumedFrom: start.resumedFrom } : {}),
    ...(startAccuracy !== undefined ? { startAccuracy } : {}),
  };
  await log({
    event: logPhase && !logPhase.last ? 'phase_end' : 'end', test_top1: result.testAccuracy, seconds, gpu_seconds: gpuSeconds,
    estimated_cost: result.estimatedCost, steps: step + (logPhase?.stepsBefore ?? 0),
  });
  return result;
}

/** Labels of both splits and every 4,093rd pixel byte: another --data-dir or --test-limit on one rank shows. */
function dataDigest(data: { train: ImageSet; test: ImageSet }): string {
  const sample = (pixels: Uint8Array) => Uint8Array.from({ length: Math.ceil(pixels.length / 4093) }, (_, i) => pixels[i * 4093]!);
  return digestArrays(new Map<string, Uint8Array | Uint16Array>([
    ['train labels', data.train.labels], ['test labels', data.test.labels], ['train pixels', sample(data.train.pixels)], ['test pixels', sample(data.test.pixels)],
  ]));
}

/**
 * GPU-seconds so far: every rank holds a GPU for the whole run, and a checkpoint keeps the earlier runs'
 * total however many ranks they had (one that predates it: its seconds times this run's ranks).
 */
export function runGpuSeconds(device: DeviceName, ranks: number, earlier: { seconds: number; gpuSeconds?: number }, elapsedSeconds: number): number {
  if (device !== 'cuda') return 0;
  return (earlier.gpuSeconds ?? earlier.seconds * ranks) + elapsedSeconds * ranks;
}
