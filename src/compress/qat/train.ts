/**
 * Quantization-aware training: fine-tune `slim quantize`'s QDQ graph with its quantization simulated
 * in every forward pass, then export the integer QDQ graph. Placement and calibration are PTQ's
 * (the graph comes from it); the engine fake-quantizes activations and per-channel weights with
 * straight-through gradients, and optionally learns the scales (LSQ).
 */
import type { QatPhase } from './phases.js';
import path from 'node:path';
import { option, usageError } from '../../errors.js';
import type { ImageSet, Normalization } from '../../data/types.js';
import type { DeviceName } from '../../engine/native.js';
import { trainModel, type EpochRecord, type RunSettings, type TrainOptions, type TrainProgress, type TrainResult } from '../../engine/train.js';
import type { EpochAugment } from '../../engine/epoch.js';
import type { Graph } from '../../onnx/graph.js';
import { foldLiveBatchNorm, withLiveBatchNorm } from './batchnorm.js';
import { QAT_DEFAULTS } from './defaults.js';
import { exportQat, settleScales } from './export.js';
import { toQatGraph, type QatLayout } from './graph.js';
import { masksFromZeros } from '../prune/unstructured.js';

export interface QatOptions {
  /** The int8 QDQ graph to train: `quantizeModel(...).graph` (or the low-level `quantizeStatic(...).graph`). */
  graph: Graph;
  /**
   * The float graph it was quantized from (`quantizeModel(...).float`): latent weights start there. Another
   * float model (even the same one before BatchNorm folding) is refused: its weights must quantize to the
   * int8 ones. Without it, latent weights start from the int8 values.
   */
  float?: Graph;
  data: { train: ImageSet; test: ImageSet };
  epochs: number;
  /** Default 128. */
  batch?: number;
  /**
   * Peak learning rate (default 1e-3 for SGD, 1e-5 for AdamW). The QDQ graph has its BatchNorms
   * folded, and a ResNet without BN diverges at rates BN made safe: on the PyTorch-trained
   * ResNet18-CIFAR (width 0.25) SGD at 0.01 blew the loss from 0.35 to 3 within four steps, float and
   * QAT alike, while 1e-3 stays stable.
   */
  lr?: number;
  optimizer?: 'sgd' | 'adamw';
  /** Default 5e-5: QAT starts from converged weights; the usual 5e-4 pulls them away. */
  weightDecay?: number;
  /** Default cosine decay after a 5 % warm-up. */
  schedule?: TrainOptions['schedule'];
  /** Train the quantization scales too (LSQ); default false: PTQ's calibrated scales stay fixed. */
  learnableScales?: boolean;
  /**
   * Epochs to train with the model's BatchNormalization live (batch statistics) before folding it
   * (frozen from then on); needs `unfolded`. Default 0: BN folded throughout, as PTQ's graph has it.
   */
  bnEpochs?: number;
  /** The float model with its BatchNormalization nodes (what was quantized, before BN folding). */
  unfolded?: Graph;
  device?: DeviceName;
  threads?: number;
  seed?: number;
  trainLimit?: number;
  testLimit?: number;
  augment?: EpochAugment | false;
  /**
   * Distill from a float teacher while training. `slim quantize --qat` distils from the model before
   * quantization (`quantizeModel(...).reference`) unless --no-distill; here only when given.
   */
  teacher?: TrainOptions['teacher'];
  checkpointDir?: string;
  resume?: boolean | string;
  /** The command's settings a checkpoint must share (TrainOptions.resumeKey): the calibration, the input file. */
  resumeKey?: Record<string, unknown>;
  /** The command, recorded in checkpoints (TrainOptions.command). */
  command?: string;
  log?: string;
  onProgress?: (p: TrainProgress) => void;
  /** After each epoch: its record, numbered over both phases (TrainOptions.onEpoch). */
  onEpoch?: TrainOptions['onEpoch'];
  /** Preprocessing of the images (default: the model's metadata, else CIFAR-10's): the one calibration used. */
  normalization?: Normalization;
  /** Named in errors. */
  file?: string;
  /**
   * Record the engine's top-1 on the test images in the model (slimkit.qat; default true). A pipeline
   * stage leaves it out: its model then depends on the training images only, and is reused when only
   * the test images change.
   */
  recordEngineTop1?: boolean;
}

export interface QatResult {
  /** The integer QDQ graph to ship. */
  graph: Graph;
  /** The trained graph as the engine ran it (latent float weights behind Q → DQ pairs). */
  trained: Graph;
  layout: QatLayout;
  history: EpochRecord[];
  /** Engine top-1 (fake-quantized) after the last epoch. */
  testAccuracy: number;
  seconds: number;
  gpuSeconds: number;
  estimatedCost: number;
  steps: number;
  warnings: string[];
  /** The epochs the checkpoints resumed from held (both phases of a --bn-epochs run counted); undefined when none. */
  resumedFrom?: number;
  /** Engine top-1 of the fake-quantized model before its first step (PTQ's); undefined when it resumed. */
  startAccuracy?: number;
}

export { QAT_DEFAULTS } from './defaults.js';

/**
 * Fine-tunes an int8 QDQ model with fake-quantized weights (straight-through gradients) and exports the
 * same QDQ form ONNX Runtime runs in int8: what was trained is what ships.
 */
export async function quantizationAwareTraining(o: QatOptions): Promise<QatResult> {
  if (!o.graph.nodes.some((n) => n.opType === 'QuantizeLinear')) {
    throw usageError('quantization-aware training starts from a static-quantized QDQ graph', 'quantize the float model first (quantizeModel, or slim quantize --mode static) and pass its graph, or run slim quantize --qat on the float model');
  }
  const qat = toQatGraph(o.graph, { ...(o.float ? { float: o.float } : {}), ...(o.file ? { file: o.file } : {}) });
  const learnableScales = o.learnableScales ?? false;
  const bnEpochs = o.bnEpochs ?? 0;
  if (!Number.isInteger(bnEpochs) || bnEpochs < 0 || bnEpochs > o.epochs) {
    throw usageError(`${option('--bn-epochs')} must be a whole number from 0 to ${option('--epochs')} (${o.epochs}), got ${bnEpochs}`);
  }
  checkPhasedResume(bnEpochs, o.resume);
  // A sparse model stays sparse: pruned (exactly zero) latent weights are held at zero while training.
  const masks = masksFromZeros(qat.graph, qat.fromFloat);
  const batch = o.batch ?? QAT_DEFAULTS.batch;
  const common = {
    data: o.data,
    trainable: qat.trainable,
    ...(masks.size > 0 ? { masks } : {}),
    ...(o.onEpoch ? { onEpoch: o.onEpoch } : {}),
  };
  // A phase's settings, with the teacher's model.
  const settingsOf = (phase: QatPhase): RunSettings & Pick<TrainOptions, 'teacher'> => {
    const { teacher: _soft, ...settings } = qatRunSettings(o, phase);
    return { ...settings, ...(o.teacher ? { teacher: o.teacher } : {}) };
  };
  // The progress of a phase counts the run's epochs and steps: phase 2's first is epoch bnEpochs + 1 of
  // o.epochs; the time left is the phase's scaled by the run's steps left.
  const perEpochSteps = stepsPerEpoch(o.data.train, batch, o.trainLimit);
  const progressFrom = (offset: number): Pick<TrainOptions, 'onProgress'> => {
    if (!o.onProgress) return {};
    const totalSteps = perEpochSteps * o.epochs;
    return {
      onProgress: (p) => {
        const globalStep = p.globalStep + offset * perEpochSteps;
        const phaseLeft = p.totalSteps - p.globalStep;
        const etaSeconds = phaseLeft > 0 ? (p.etaSeconds * (totalSteps - globalStep)) / phaseLeft : p.etaSeconds;
        o.onProgress!({ ...p, epoch: p.epoch + offset, epochs: o.epochs, globalStep, totalSteps, etaSeconds });
      },
    };
  };
  const phases: TrainResult[] = [];
  let graph = qat.graph;
  if (bnEpochs > 0) {
    // Phase 1: BN live (batch statistics), the one learning-rate schedule spanning both phases.
    if (!o.unfolded) throw usageError('live BatchNorm epochs need the float model with its BatchNormalization nodes (QatOptions.unfolded)');
    const live = withLiveBatchNorm(qat, o.unfolded, o.file ? { file: o.file } : {});
    const perEpoch = perEpochSteps;
    phases.push(await trainModel({
      ...settingsOf('bn-live'),
      ...common,
      graph: live.graph,
      ...progressFrom(0),
      schedulePhase: { before: 0, after: perEpoch * (o.epochs - bnEpochs) },
      logPhase: { name: 'bn_live', epochsBefore: 0, stepsBefore: 0, epochs: o.epochs, last: o.epochs === bnEpochs },
    }));
    graph = foldLiveBatchNorm(settleScales(phases[0]!.graph).graph, live.batchNorms);
    if (o.epochs > bnEpochs) {
      phases.push(await trainModel({
        ...settingsOf('folded'),
        ...common,
        graph,
        ...progressFrom(bnEpochs),
        schedulePhase: { before: perEpoch * bnEpochs, after: 0 },
        logPhase: { name: 'bn_folded', epochsBefore: bnEpochs, stepsBefore: perEpoch * bnEpochs, epochs: o.epochs, last: true },
      }));
      graph = phases[1]!.graph;
    }
  } else {
    phases.push(await trainModel({ ...settingsOf('whole'), ...common, graph, ...progressFrom(0) }));
    graph = phases[0]!.graph;
  }
  const last = phases.at(-1)!;
  // Phase 2's epochs continue phase 1's numbering.
  const history = phases.flatMap((p, k) => p.history.map((e) => ({ ...e, epoch: e.epoch + (k === 0 ? 0 : bnEpochs) })));
  const description = {
    epochs: o.epochs,
    learnable_scales: learnableScales,
    ...(bnEpochs > 0 ? { bn_live_epochs: bnEpochs } : {}),
    ...(o.recordEngineTop1 === false ? {} : { engine_top1: last.testAccuracy, eval_images: Math.min(o.testLimit ?? Infinity, o.data.test.labels.length) }),
    ...(o.teacher ? { distilled: true } : {}),
  };
  const settled = settleScales(graph);
  const exported = exportQat(settled.graph, qat.layout, { description });
  const warnings = [...exported.warnings];
  if (settled.changed > 0) warnings.push(`${settled.changed} learned scale(s) crossed zero or the floor and were taken as |s|; a lower --lr keeps LSQ steadier`);
  const sum = (f: (p: TrainResult) => number): number => phases.reduce((a, p) => a + f(p), 0);
  // A folded phase that resumed counts the live phase's epochs before it, which it needed finished.
  const resumedFrom = phases[1]?.resumedFrom !== undefined ? bnEpochs + phases[1].resumedFrom : phases[0]!.resumedFrom;
  return {
    graph: exported.graph,
    trained: settled.graph,
    layout: qat.layout,
    history,
    testAccuracy: last.testAccuracy,
    seconds: sum((p) => p.seconds),
    gpuSeconds: sum((p) => p.gpuSeconds),
    estimatedCost: sum((p) => p.estimatedCost),
    steps: sum((p) => p.steps),
    warnings,
    ...(resumedFrom !== undefined ? { resumedFrom } : {}),
    ...(phases[0]!.startAccuracy !== undefined ? { startAccuracy: phases[0]!.startAccuracy } : {}),
  };
}

/** A run with live BN epochs resumes from its checkpoint folder: a file alone cannot say which phase it holds. */
export function checkPhasedResume(bnEpochs: number | undefined, resume: boolean | string | undefined): void {
  if (bnEpochs && typeof resume === 'string') {
    throw usageError(`a checkpoint file (${option('--resume', 'FILE')}) cannot say which phase of a ${option('--bn-epochs')} run it belongs to`, `resume with ${option('--checkpoint-dir', 'DIR')} and ${option('--resume', true)}: each phase finds its own checkpoint (DIR/bn-live, DIR/folded)`);
  }
}

/** Phase 2 shuffles with --seed plus this: another order than phase 1's first epochs. */
export const FOLDED_SEED_OFFSET = 7919;

/** A QAT run trains in one phase, or with --bn-epochs in two, each with its own checkpoint folder (cli/paths.ts: checkpointsIn). */

/** QatOptions without the model and the data: what a phase's settings follow from. */
export type QatSettings = Omit<QatOptions, 'graph' | 'float' | 'data' | 'unfolded' | 'teacher' | 'onProgress' | 'onEpoch' | 'recordEngineTop1'> & { teacher?: RunSettings['teacher'] };

/**
 * What one phase of QAT trains with, model and data aside: quantizationAwareTraining trains with it, and
 * `slim quantize --qat` compares it with a --resume's checkpoint before calibrating (minutes on a large set).
 * The schedule's split between the phases counts steps, so it waits for the data (TrainOptions.schedulePhase).
 */
export function qatRunSettings(o: QatSettings, phase: QatPhase): RunSettings {
  const bnEpochs = o.bnEpochs ?? 0;
  const folder = o.checkpointDir === undefined ? undefined : phase === 'whole' ? o.checkpointDir : path.join(o.checkpointDir, phase);
  return {
    epochs: phase === 'whole' ? o.epochs : phase === 'bn-live' ? bnEpochs : o.epochs - bnEpochs,
    batch: o.batch ?? QAT_DEFAULTS.batch,
    lr: o.lr ?? (o.optimizer === 'adamw' ? QAT_DEFAULTS.adamwLr : QAT_DEFAULTS.lr),
    optimizer: o.optimizer ?? 'sgd',
    weightDecay: o.weightDecay ?? QAT_DEFAULTS.weightDecay,
    schedule: o.schedule ?? QAT_DEFAULTS.schedule,
    learnableScales: o.learnableScales ?? false,
    seed: (o.seed ?? 0) + (phase === 'folded' ? FOLDED_SEED_OFFSET : 0),
    // Quantization arithmetic must be float32 to match ONNX Runtime's: no bf16 autocast.
    autocast: 'none',
    // The fake-quantized model before its first step: what PTQ gave, on the images every epoch is scored on.
    // Phase 2 continues phase 1's model (BN folded into it): no new starting point to score.
    scoreStart: phase !== 'folded',
    ...(folder !== undefined ? { checkpointDir: folder } : {}),
    ...(o.normalization ? { normalization: o.normalization } : {}),
    ...(o.device ? { device: o.device } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.trainLimit !== undefined ? { trainLimit: o.trainLimit } : {}),
    ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}),
    ...(o.augment !== undefined ? { augment: o.augment } : {}),
    ...(o.teacher ? { teacher: o.teacher } : {}),
    ...(o.resume !== undefined ? { resume: o.resume } : {}),
    ...(o.resumeKey ? { resumeKey: o.resumeKey } : {}),
    ...(o.command ? { command: o.command } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.file ? { file: o.file } : {}),
  };
}

/** The engine's steps per epoch (trainModel: whole batches of the first trainLimit images). */
function stepsPerEpoch(train: ImageSet, batch: number, limit: number | undefined): number {
  const count = Math.min(train.labels.length, limit ?? Infinity);
  return Math.floor(count / Math.min(batch, count));
}
