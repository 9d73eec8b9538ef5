/** The training flags `slim train` and `slim distill` share, as the engine's TrainOptions. */
import type { ImageSet, Normalization } from '../data/types.js';
import { autocastFor, type PrecisionChoice } from '../engine/precision.js';
import { hasBatchNorm, reinsertedAfter, unnormalizedNote, withTrainingBatchNorm } from '../engine/reinsert-batchnorm.js';
import type { EpochRecord, TrainOptions, TrainProgress } from '../engine/train.js';
import { RESIZED_CROP } from '../engine/epoch.js';
import type { AugmentMode } from './options.js';
import type { Graph } from '../onnx/graph.js';
import { log, progress, type Progress } from '../util/terminal.js';
import { epochLine, KD_LOSS_NOTE, trainingPhaseText } from '../report/format.js';
import { SlimError, usageError } from '../errors.js';
import { loadNative, nativeAvailable } from '../engine/native.js';
import type { Command } from 'commander';
import { exitWhenIdle } from '../engine/exit-gate.js';
import { latestCheckpoint } from './paths.js';
import { otherLoadNote, watchOtherLoad } from '../runtime/cpu-load.js';

export interface SharedTrainFlags {
  lr?: number;
  weightDecay?: number;
  warmup?: number;
  momentum?: number;
  /** commander's --no-nesterov: false for classic momentum. */
  nesterov?: boolean;
  trainLimit?: number;
  testLimit?: number;
  threads?: number;
  /** --augment's mode; commander's --no-augment: false turns augmentation off. */
  augment?: AugmentMode | boolean;
  checkpointDir?: string;
  resume?: boolean | string;
  log?: string;
  cudaGraphs?: boolean;
  precision?: PrecisionChoice;
}

type SharedKey = 'lr' | 'weightDecay' | 'warmup' | 'momentum' | 'nesterov' | 'trainLimit' | 'testLimit' | 'threads' | 'augment' | 'checkpointDir' | 'resume' | 'log' | 'cudaGraphs' | 'autocast';

/** Only the flags the user gave: the engine's defaults stay in charge of the rest. */
export function sharedTrainOptions(o: SharedTrainFlags): Partial<Pick<TrainOptions, SharedKey>> {
  return {
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    ...(o.warmup !== undefined ? { warmup: o.warmup } : {}),
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
    ...(o.nesterov === false ? { nesterov: false } : {}),
    ...(o.trainLimit !== undefined ? { trainLimit: o.trainLimit } : {}),
    ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.augment === false ? { augment: false as const } : o.augment === 'resized-crop' ? { augment: RESIZED_CROP } : {}),
    ...(o.checkpointDir ? { checkpointDir: o.checkpointDir } : {}),
    ...(o.resume !== undefined ? { resume: o.resume } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.cudaGraphs ? { cudaGraphs: true } : {}),
    ...(o.precision && autocastFor(o.precision) ? { autocast: autocastFor(o.precision)! } : {}),
  };
}

/**
 * --augment with --no-augment is refused (commander lets the later one win, unsaid), and so is an
 * --augment mode with --cache-teacher, whose cached logits belong to the unaugmented images.
 */
export function checkAugmentFlags(command: Command, o: { cacheTeacher?: boolean; alpha?: number } = {}): void {
  // commander keeps the arguments it parsed on the program as rawArgs (not in its types).
  const args = (command.parent as (Command & { rawArgs?: string[] }) | null)?.rawArgs ?? process.argv;
  const given = args.some((a) => a === '--augment' || a.startsWith('--augment='));
  if (given && args.includes('--no-augment')) throw usageError('--augment and --no-augment together', 'keep one: --augment crop|resized-crop, or --no-augment for none');
  if (given && o.cacheTeacher && (o.alpha ?? 0) < 1) {
    throw usageError('--cache-teacher trains on the unaugmented images its teacher logits were cached for: --augment does not apply', 'drop --augment, or drop --cache-teacher to let the teacher see every augmented batch');
  }
}

/**
 * Flags that would do nothing with the optimizer and schedule chosen are refused, not ignored: a
 * --warmup under a constant schedule, momentum for AdamW, a OneCycle without a rise.
 */
export function checkOptimizerFlags(o: { optimizer: string; schedule: string; warmup?: number; momentum?: number; nesterov?: boolean }): void {
  if (o.warmup !== undefined && o.schedule === 'constant') throw usageError('--warmup shapes the onecycle and cosine schedules; --schedule constant has none', 'drop --warmup, or pass --schedule cosine');
  if (o.warmup === 0 && o.schedule === 'onecycle') throw usageError('--warmup 0: OneCycle needs a rise (a fraction in (0, 1), default 0.3)', 'give --warmup a fraction like 0.3, or pass --schedule cosine (whose warm-up may be 0)');
  if (o.optimizer === 'adamw' && (o.momentum !== undefined || o.nesterov === false)) {
    throw usageError(`${o.momentum !== undefined ? '--momentum' : '--no-nesterov'} is SGD's; AdamW has its own moment estimates`, `drop it, or pass --optimizer sgd`);
  }
}

/**
 * A run that ends near chance with a test loss far above chance's (ln classes): the weights blew up
 * without the loss ever running away on the training batches, which the divergence guard watches — a
 * model at 9.5 % with a test loss of 13.7 million was written without a word. A short run that has
 * merely not learned yet (loss near ln classes) gets no warning.
 */
export function blownUpWarning(top1: number, testLoss: number | undefined, classes: number): string | undefined {
  const chanceLoss = Math.log(classes);
  if (top1 >= 1.25 / classes || testLoss === undefined || !(testLoss > 3 * chanceLoss)) return undefined;
  return `warning: the model ends near chance (${(100 * top1).toFixed(2)} %) with a test loss of ${testLoss.toPrecision(3)} (chance: ${chanceLoss.toFixed(2)}): its weights blew up — lower --lr (or raise --warmup) and train again`;
}

/**
 * A run that ends where it started: top-1 at chance and both losses within 2 % of chance level (ln classes,
 * the loss of uniform scores) — a trial's frozen random backbone trained at 1.099 = ln 3 and 33.33 % for
 * every epoch, without a word.
 */
export function learnedNothingWarning(top1: number, trainLoss: number | undefined, testLoss: number | undefined, classes: number): string | undefined {
  const chanceLoss = Math.log(classes);
  const atChance = (loss: number | undefined): boolean => loss !== undefined && Math.abs(loss - chanceLoss) <= 0.02 * chanceLoss;
  if (classes < 2 || top1 >= 1.25 / classes || !atChance(trainLoss) || !atChance(testLoss)) return undefined;
  return `warning: the model ends at chance (${(100 * top1).toFixed(2)} %) with its losses at chance level (${chanceLoss.toFixed(3)} = ln ${classes}): it learned nothing — check --lr (too low to move it), the layers --freeze or --freeze-backbone keep fixed (a classifier alone cannot learn from features a random backbone gives), and --mean/--std`;
}

/**
 * When the training images do not fill whole batches: how many each epoch leaves out (the engine drops the
 * last partial batch), or that an epoch is one step when they do not fill one.
 */
/**
 * A --train-limit or --test-limit above the images there are: all are used, said (a trial's 10,000 on a
 * folder of 360 passed without a word, as if 10,000 had been read).
 */
export function limitsBeyondDataNote(counts: { train: number; test: number }, limits: { trainLimit?: number | undefined; testLimit?: number | undefined }): string | undefined {
  const over = [
    ...(limits.trainLimit !== undefined && limits.trainLimit > counts.train ? [`--train-limit ${limits.trainLimit} (there are ${counts.train.toLocaleString('en')} training images)`] : []),
    ...(limits.testLimit !== undefined && limits.testLimit > counts.test ? [`--test-limit ${limits.testLimit} (there are ${counts.test.toLocaleString('en')} test images)`] : []),
  ];
  return over.length ? `note: ${over.join(' and ')} ask${over.length === 1 ? 's' : ''} for more images than there are: all are used` : undefined;
}

export function leftOverNote(images: number, limit: number | undefined, batch: number): string | undefined {
  const count = Math.min(images, limit ?? Infinity);
  if (count === 0) return undefined;
  if (count < batch) return `note: ${count} training images are fewer than one batch of ${batch}: each epoch is one step on all ${count} (lower --batch for more steps)`;
  const leftOver = count % batch;
  if (leftOver === 0) return undefined;
  const batches = Math.floor(count / batch);
  // A tenth or more of a small data set left out of every epoch: the nearest batch below that uses them all.
  const whole = leftOver >= count / 10 ? Array.from({ length: batch - Math.ceil(batch / 2) }, (_, k) => batch - 1 - k).find((b) => count % b === 0) : undefined;
  return `note: ${count} training images make ${batches} batch${batches === 1 ? '' : 'es'} of ${batch}; each epoch leaves out ${leftOver} (a different ${leftOver}: the shuffle changes every epoch)${whole ? ` — --batch ${whole} uses them all` : ''}`;
}

/**
 * What a training command's flags alone rule out, checked before it reads data or calibrates (QAT spent
 * calibration and an evaluation before saying either): --resume without a checkpoint to resume from,
 * --device cuda where the addon has no CUDA.
 */
export function checkTrainingFlags(o: { resume?: boolean | string; checkpointDir?: string; device?: string }): void {
  if (o.resume === true && !o.checkpointDir) throw usageError('--resume needs --checkpoint-dir (or a checkpoint file)', 'pass --checkpoint-dir DIR, the folder the run to continue wrote its checkpoints to');
  if (o.device === 'cuda' && nativeAvailable() && !loadNative().info().cuda) {
    throw new SlimError({ problem: "device 'cuda' was asked for, but this LibTorch has no CUDA or sees no GPU", fix: 'train with --device cpu here, or on a GPU machine whose PyTorch has CUDA (npm run build:native links it when `python3 -c "import torch"` finds it)' });
  }
}

/** --resume with nothing to resume yet (a first run of a script that always passes it): said, so no one believes it resumed. */
export function freshStartNote(o: { checkpointDir?: string; resume?: boolean | string }): string | undefined {
  if (o.resume !== true || !o.checkpointDir || latestCheckpoint(o.checkpointDir)) return undefined;
  return `note: --resume: ${o.checkpointDir} holds no checkpoint yet, so training starts at epoch 1`;
}

/** After a resumed run, a line saying what the checkpoint held: the totals printed count every run. */
export function resumedNote(resumedFrom: number | undefined, epochs: number): string[] {
  if (resumedFrom === undefined) return [];
  if (resumedFrom >= epochs) return [`  the checkpoint had finished all ${epochs} epochs: nothing was trained, the model was written from it (the figures are that run's)`];
  const trained = resumedFrom + 1 === epochs ? `epoch ${epochs}` : `epochs ${resumedFrom + 1}–${epochs}`;
  return [`  resumed after epoch ${resumedFrom} of ${epochs}: this run trained ${trained}; steps and time count the earlier run too`];
}

/**
 * The graph to train: a model without BatchNormalization (BN folded at export, as torch.onnx writes
 * it) gets BN re-inserted after its Convs unless --no-reinsert-bn (engine/reinsert-batchnorm.ts).
 */
export async function trainingGraph(
  graph: Graph,
  images: ImageSet,
  o: { reinsertBn: boolean; fold: boolean; seed: number; threads?: number; file?: string; quiet?: boolean; normalization?: Normalization; frozen?: ReadonlySet<string> },
): Promise<Graph> {
  if (!o.reinsertBn) return graph;
  // The statistics are measured on the images as training will feed them (distillation may feed the teacher's normalization).
  const r = await withTrainingBatchNorm(graph, images, { seed: o.seed, ...(o.file ? { file: o.file } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.normalization ? { normalization: o.normalization } : {}), ...(o.frozen ? { frozen: o.frozen } : {}) });
  if (r.inserted > 0 && !o.quiet) {
    log(`the model has no BatchNormalization (folded at export, or none in its design): training with BN re-inserted ${reinsertedAfter(r)}, ` +
      `${r.untrained ? 'as PyTorch initializes it (γ = 1, β = 0: every folded bias is 0, so the export looks untrained)' : `set from ${r.samples} training images so it starts as the same function`}${o.fold ? ', and folded again in the written model' : ''} (--no-reinsert-bn trains the folded weights)`);
  }
  const note = unnormalizedNote(r, graph);
  if (note && !o.quiet) log(note);
  return r.graph;
}

/** What `wrote FILE` adds about BatchNormalization: folded, folded where a Conv or Gemm precedes it, or nothing when there was none. */
export function foldedNote(trained: Graph, written: Graph, fold: boolean): string {
  if (!fold || !hasBatchNorm(trained)) return '';
  // Folded where BN follows a Conv or Gemm; a pre-activation BN (DenseNet) stays.
  return hasBatchNorm(written) ? ' (BatchNormalization folded where a Conv or Gemm precedes it)' : ' (BatchNormalization folded)';
}

/** What an interrupted run kept, for explainInterrupt: while training, after it (`out`), once `out` is written. */
export function keptAtInterrupt(checkpointDir: string | undefined, state: { out?: string; written?: boolean }): string {
  const last = checkpointDir ? latestCheckpoint(checkpointDir) : undefined;
  if (state.out && state.written) return `training had finished and ${state.out} was written; its check in ONNX Runtime was cut short (slim eval ${state.out} runs it)`;
  if (state.out) {
    return last
      ? `training had finished but ${state.out} was not written: ${last} holds the whole run; run the same command with --resume to write it (nothing trains again)`
      : `training had finished but ${state.out} was not written, and without --checkpoint-dir nothing was kept`;
  }
  return !checkpointDir
    ? 'nothing was kept (pass --checkpoint-dir DIR to make a run resumable with --resume)'
    : last
      ? `${last} holds the last finished epoch; run the same command with --resume to continue from it`
      : `no epoch had finished, so nothing was kept (a checkpoint is written in ${checkpointDir} after each epoch)`;
}

/** What explainInterrupt says from here on: training finished (`trained`), the model written (`written`). */
export interface InterruptExplainer {
  trained(out: string): void;
  written(): void;
  /** Removes the handlers (the command is done). */
  stop(): void;
}

/**
 * Ctrl-C (or SIGTERM: `timeout`, `docker stop`, systemd) while training, or while the trained model is
 * written and scored: say what was kept and how to go on, then exit 130 (143). Safe at any moment: a
 * checkpoint is replaced atomically, and only after a finished epoch. The handlers stay until `stop()`:
 * removed as training ended, a Ctrl-C while the model was written exited 130 without a word, and no
 * model. (A data-parallel worker leaves signals to its launcher: none there.)
 */
export function explainInterrupt(command: string, o: { checkpointDir?: string }, kept: (state: { out?: string; written?: boolean }) => string = (state) => keptAtInterrupt(o.checkpointDir, state)): InterruptExplainer {
  const state: { out?: string; written?: boolean } = {};
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const onSignal = (): void => {
      // Said as the process exits, after the running step (a few ms to seconds) and a checkpoint being
      // written have finished: what is on disk then (it said "no epoch had finished" of an epoch whose
      // checkpoint was being written, and was then kept).
      process.once('exit', () => log(`\n${command}: ${signal === 'SIGINT' ? 'interrupted' : 'stopped (SIGTERM)'} — ${kept(state)}`));
      exitWhenIdle(signal === 'SIGINT' ? 130 : 143);
    };
    process.once(signal, onSignal);
    return [signal, onSignal] as const;
  });
  return {
    trained: (file) => void (state.out = file),
    written: () => void (state.written = true),
    stop: () => {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    },
  };
}

export interface TrainingProgress {
  onProgress: (p: TrainProgress) => void;
  onEpoch: (e: EpochRecord) => void;
  /** A line above the bar (or alone, before it starts): a warning that comes up while training runs. */
  say: (line: string) => void;
  stop: () => void;
}

/**
 * The bar over training steps of train, distill and QAT, with a line per epoch above it. It starts with the
 * first step (only then is the step count known); `note` (hints, computed then: a usage error stays the
 * only line) is printed just before it. `distilled`: the training loss is the distillation loss, said so.
 */
export function trainingProgress(label: string, note?: () => string | undefined, { distilled = false } = {}): TrainingProgress {
  let bar: Progress | undefined;
  let epochs = 0;
  return {
    onProgress: (p) => {
      if (!bar) {
        const text = [note?.(), distilled ? KD_LOSS_NOTE : undefined].filter(Boolean).join('\n');
        if (text) log(text);
      }
      bar ??= progress(label, p.totalSteps, 'steps');
      epochs = p.epochs;
      bar.update(p.globalStep, { phase: trainingPhaseText(p, true, distilled) });
    },
    onEpoch: (e) => (bar ? bar.note(epochLine(e, epochs, distilled)) : log(epochLine(e, epochs, distilled))),
    say: (line) => (bar ? bar.note(line) : log(line)),
    stop: () => bar?.stop(),
  };
}

/** Training shorter than this says nothing of the machine's load: a moment's spike is not load. */
const LOAD_WATCH_MIN_MS = 5000;

/**
 * Watches what other processes take of the CPU while a command trains on it: the img/s and time of a busy
 * machine are not its own. The function returned stops: JSON fields and a note when it was busy. Not on
 * CUDA (the GPU sets the pace) nor for data-parallel ranks (the other ranks would count as other work).
 */
export function watchTrainingLoad(device: string, distributed: boolean, threads?: number): () => { json: { other_load_cores?: number; cores?: number }; note?: string } {
  if (device !== 'cpu' || distributed) return () => ({ json: {} });
  const started = performance.now();
  const stop = watchOtherLoad();
  return () => {
    const load = performance.now() - started >= LOAD_WATCH_MIN_MS ? stop() : undefined;
    const busy = otherLoadNote(load, 'training');
    const note = busy && load && threads !== undefined ? `${busy}${fewerThreadsHint(threads, load)}` : busy;
    return { json: load ? { other_load_cores: Number(load.otherCores.toFixed(2)), cores: load.cores } : {}, ...(note ? { note } : {}) };
  };
}

/**
 * More threads than the cores other work left free: each step waits for the thread on a busy core (a
 * trial's 2 threads beside one busy core trained at 45 img/s, 1 thread at 430). Empty when they fit.
 */
export function fewerThreadsHint(threads: number, load: { otherCores: number; cores: number }): string {
  const free = Math.max(1, Math.floor(load.cores - load.otherCores + 0.25));
  return threads > free ? `; ${threads} threads for ${free} free core${free > 1 ? 's' : ''}: --threads ${free} may train faster (each step waits for the thread on a busy core)` : '';
}
