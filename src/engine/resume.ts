/**
 * Resuming a training run: the fingerprint's content hashes and words, and reading a checkpoint back
 * into a plan — only when it was made by the same run (the same settings, the same starting weights and
 * teacher), else refused naming what differs.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { SlimError, option, usageError } from '../errors.js';
import type { Graph } from '../onnx/graph.js';
import { readCheckpoint } from './checkpoint.js';
import type { EnginePlan } from './plan.js';
import type { EpochRecord, TrainOptions } from './train.js';

export interface CheckpointMeta {
  version: 1;
  /** Epochs completed. */
  epoch: number;
  step: number;
  fingerprint: Record<string, unknown>;
  history: EpochRecord[];
  seconds: number;
  /**
   * GPU-seconds of the runs so far, every rank's (absent in checkpoints made before it was kept: their
   * seconds times the resuming run's ranks, on CUDA).
   */
  gpuSeconds?: number;
}

/** A short content hash for the fingerprint (long name lists and masks would bloat every log line). */
export function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** A content hash of named arrays (pruning masks, a teacher's weights), in name order. */
export function digestArrays(arrays: ReadonlyMap<string, { buffer: ArrayBufferLike; byteOffset: number; byteLength: number } | readonly unknown[]>): string {
  const hash = createHash('sha256');
  for (const name of [...arrays.keys()].sort()) {
    const a = arrays.get(name)!;
    hash.update(name);
    if ('buffer' in a) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    else hash.update(JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  }
  return hash.digest('hex').slice(0, 16);
}

export function digestWeights(graph: Graph): string {
  return digestArrays(new Map([...graph.initializers].map(([name, t]) => [name, t.data])));
}

/** What each fingerprint entry is to the user: the flag that sets it, where there is one. */
const FINGERPRINT_WORDS: Record<string, string> = {
  graph: 'model', params: 'parameter tensors', epochs: '--epochs', batch: '--batch', lr: '--lr', schedule: '--schedule',
  optimizer: '--optimizer and its settings', labelSmoothing: '--label-smoothing', seed: '--seed', trainCount: 'training images (--train-limit)',
  augment: 'augmentation (--augment, --no-augment)', teacher: 'distillation (--alpha, --temperature, --cache-teacher)', teacherWeights: "the teacher's weights",
  startWeights: 'the model it starts from (--model, --width, --student)',
  schedulePhase: '--epochs and --bn-epochs', bnEpochs: '--bn-epochs', foldedEpochs: '--epochs beyond --bn-epochs', warmup: '--warmup', decayAll: 'weight decay on every parameter', autocast: '--precision',
  learnableScales: 'learnable quantization scales', frozen: 'frozen layers (--freeze)', trainable: 'trained parameters',
  masks: 'pruning masks',
};

/**
 * The same entries in the flags of the command whose checkpoint it is: `slim quantize --qat` has no
 * --alpha (its teacher is the float model, --no-distill), `slim distill` no --model (a trial was pointed
 * to flags the command lacks); --freeze-backbone and --new-head change the parameters trained too.
 */
const COMMAND_WORDS: Record<string, Record<string, string>> = {
  'slim train': { startWeights: 'the model it starts from (--model, --width)', frozen: 'frozen layers (--freeze, --freeze-backbone)', params: 'trained parameter tensors (--freeze, --freeze-backbone, --new-head)' },
  'slim distill': { startWeights: 'the student it starts from (--student, --width)', frozen: 'frozen layers (--freeze)' },
  'slim quantize --qat': { teacher: 'distillation from the float model (--no-distill)', startWeights: 'the model it starts from (the input model, as calibrated)' },
  'slim prune': { teacher: 'distillation from the unpruned model (--distill)', startWeights: 'the pruned model it fine-tunes (its cuts)' },
};

const wordOf = (key: string, command: string | undefined): string => (command ? COMMAND_WORDS[command]?.[key] : undefined) ?? FINGERPRINT_WORDS[key] ?? key;

/** A fingerprint entry (or a data-parallel setting) by the flag or words a user knows it by. */
export function settingWord(key: string): string {
  return FINGERPRINT_WORDS[key] ?? RANK_SETTING_WORDS[key] ?? key;
}

/** The settings data-parallel ranks compare beyond the fingerprint (DistributedTraining.attach). */
const RANK_SETTING_WORDS: Record<string, string> = {
  testLimit: '--test-limit', data: 'the images read (--data, --data-dir, --image-size, the limits)', bucketBytes: '--dist-bucket-mb',
  syncBatchNorm: '--sync-bn', caller: "the command's own settings",
};

/**
 * The settings of the command itself (TrainOptions.resumeKey), by name. A `*_digest` entry is a content
 * hash (the input model's weights): named, not printed.
 */
const CALLER_WORDS: Record<string, string> = {
  new_head: '--new-head', mean: '--mean', std: '--std', resize: '--resize', reinsert_bn: '--no-reinsert-bn', model_digest: 'the input model',
  calibration: 'calibration',
};

/** A record's entries are its flags' names in snake_case or camelCase, but for these. */
const ENTRY_FLAGS: Record<string, string> = { activations: '--activation-type', kind: '--optimizer', nesterov: 'Nesterov momentum (--no-nesterov)', cache: '--cache-teacher' };

/** weight_decay or weightDecay → --weight-decay. */
const entryFlag = (k: string): string => ENTRY_FLAGS[k] ?? `--${k.replace(/_/g, '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `then` → `now` in words; of two records (QAT's calibration), only the entries that differ. */
function changed(then: unknown, now: unknown): string {
  if (!isRecord(then) || !isRecord(now)) return `${JSON.stringify(then) ?? 'unset'} then, ${JSON.stringify(now) ?? 'unset'} now`;
  return [...new Set([...Object.keys(then), ...Object.keys(now)])]
    .filter((k) => JSON.stringify(then[k]) !== JSON.stringify(now[k]))
    .map((k) => `${entryFlag(k)} ${JSON.stringify(then[k]) ?? 'unset'} then, ${JSON.stringify(now[k]) ?? 'unset'} now`)
    .join(', ');
}

/** One fingerprint difference in words, in the flags of `command` where it has its own: hashes are named, not printed. */
export function describeDifference(key: string, then: unknown, now: unknown, command?: string): string {
  if (key === 'caller') {
    const [a, b] = [(then ?? {}) as Record<string, unknown>, (now ?? {}) as Record<string, unknown>];
    return [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
      .map((k) => (k.endsWith('_digest') ? `${CALLER_WORDS[k] ?? k}: another now` : `${CALLER_WORDS[k] ?? entryFlag(k)}: ${changed(a[k], b[k])}`))
      .join('; ');
  }
  const word = wordOf(key, command);
  const hashed = ['startWeights', 'teacherWeights', 'frozen', 'trainable', 'masks'].includes(key);
  if (key === 'startWeights') return `${word}: other weights now`;
  if (hashed) return then === undefined ? `${word}: none then` : now === undefined ? `${word}: none now` : `${word}: others now`;
  // The optimizer's and distillation's settings: only the entries that differ, by their flags; a
  // distillation dropped or added is named as such, not as a record and "none".
  if ((key === 'optimizer' || key === 'teacher') && isRecord(then) && isRecord(now)) return changed(then, now);
  const absent = (v: unknown): boolean => v === undefined || v === null;
  if (key === 'teacher' && absent(then) !== absent(now)) return `${word}: ${absent(then) ? 'off then, on now' : 'on then, off now'}`;
  const shown = (v: unknown): string => (v === null ? 'none' : JSON.stringify(v) ?? 'unset');
  return `${word}: ${shown(then)} then, ${shown(now)} now`;
}

/** Fingerprint entries added after checkpoints were first written: absent from an older one, not compared. */
const RECORDED_LATER = ['startWeights', 'teacherWeights', 'command'];

/** A checkpoint of another run; `keys`: the fingerprint entries that differ ('startWeights': another starting model). */
export class CheckpointMismatch extends SlimError {
  constructor(readonly keys: readonly string[], parts: ConstructorParameters<typeof SlimError>[0]) {
    super(parts, 'usage');
  }
}

/** Where a run starts: from scratch, or after the epochs a checkpoint holds. */
export interface Start {
  history: EpochRecord[];
  epoch: number;
  step: number;
  seconds: number;
  gpuSeconds?: number;
  resumedFrom?: number;
}

/** How to start a new run instead: a checkpoint in --checkpoint-dir blocks a run without --resume (cli/paths.ts). */
export function startOver(o: Pick<TrainOptions, 'resume' | 'checkpointDir'>): string {
  const blocked = o.checkpointDir !== undefined && existsSync(path.join(o.checkpointDir, 'last.ckpt'));
  return typeof o.resume === 'string' && !blocked ? 'start a new run without --resume' : 'start a new run with another --checkpoint-dir (or delete the checkpoint)';
}

/** Fingerprint entries that follow from the model and the images: known once trainModel has both. */
const MODEL_AND_DATA_ENTRIES = ['graph', 'params', 'batch', 'trainCount', 'frozen', 'trainable', 'masks', 'startWeights', 'teacherWeights'];

/** Whether a fingerprint entry is known before the model and the images are (refuseChangedSettings compares those). */
export const knownBeforeData = (key: string): boolean => !MODEL_AND_DATA_ENTRIES.includes(key);

/**
 * Refuses a checkpoint made by a run with other settings before the work that precedes training: reading
 * the data and building a new head (engine/train.ts: settingsFingerprint; the model's and the data's
 * entries are compared when training starts), or QAT's minutes of calibration (its command's settings
 * alone: `compares` keeps 'caller').
 */
export async function refuseChangedSettings(
  file: string,
  settings: Record<string, unknown>,
  o: Pick<TrainOptions, 'resume' | 'checkpointDir' | 'command' | 'seededStart'>,
  compares: (key: string) => boolean = knownBeforeData,
): Promise<void> {
  refuseChangedFingerprint(file, await checkpointFingerprint(file), settings, o, compares);
}

/** The settings a checkpoint records (settingsFingerprint's entries, and those trainModel adds). */
export async function checkpointFingerprint(file: string): Promise<Record<string, unknown>> {
  return (await readCheckpoint<CheckpointMeta>(file)).meta.fingerprint;
}

/** refuseChangedSettings on a fingerprint already read, in the caller's terms (QAT's phases: the epochs as given). */
export function refuseChangedFingerprint(
  file: string,
  saved: Record<string, unknown>,
  settings: Record<string, unknown>,
  o: Pick<TrainOptions, 'resume' | 'checkpointDir' | 'command' | 'seededStart'>,
  compares: (key: string) => boolean = knownBeforeData,
): void {
  refuseOtherCommand(file, saved, o);
  refuseDifferences(file, saved, settings, o, compares);
}

/** Throws CheckpointMismatch naming the compared entries (all, or those `compares` keeps) that differ. */
function refuseDifferences(file: string, saved: Record<string, unknown>, now: Record<string, unknown>, o: Pick<TrainOptions, 'resume' | 'checkpointDir' | 'seededStart' | 'command'>, compares: (key: string) => boolean = () => true): void {
  // A checkpoint of an earlier slimkit records no weight hashes: it resumes on its settings alone.
  const compared = Object.fromEntries(Object.entries(now).filter(([k]) => !(RECORDED_LATER.includes(k) && !(k in saved))));
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(compared)])].filter((k) => compares(k) && JSON.stringify(saved[k]) !== JSON.stringify(compared[k]));
  if (keys.length === 0) return;
  // What follows from a named setting (weights after another calibration, statistics in front of the teacher, BN put back or not) is not news.
  // Likewise a zoo model's starting weights after another --seed (a model file's are its own).
  const followers = keys.includes('caller') ? ['startWeights', 'teacherWeights', 'params'] : keys.includes('seed') && o.seededStart ? ['startWeights'] : [];
  const differ = keys.filter((k) => !followers.includes(k)).map((k) => describeDifference(k, saved[k], compared[k], o.command));
  throw new CheckpointMismatch(keys, { file, problem: `the checkpoint was made by a run with other settings (${differ.join('; ')})`, fix: `resume with the same options as then, or ${startOver(o)}` });
}

/**
 * Another command's checkpoint (slim train's given to slim distill): named as such, not as the settings
 * that differ because of it. Checkpoints made before the command was recorded are compared on settings.
 */
function refuseOtherCommand(file: string, saved: Record<string, unknown>, o: Pick<TrainOptions, 'resume' | 'checkpointDir' | 'command'>): void {
  const then = saved['command'];
  if (typeof then !== 'string' || !o.command || then === o.command) return;
  throw new CheckpointMismatch(['command'], { file, problem: `the checkpoint was made by ${then}, not ${o.command}: a run resumes from its own command's checkpoint`, fix: `continue that run with ${then} --resume, or ${startOver(o)}` });
}

export async function restore(o: TrainOptions, plan: EnginePlan, fingerprint: Record<string, unknown>, checkpointPath: string | undefined): Promise<Start> {
  if (o.resume === true && !checkpointPath) throw usageError(`${option('--resume')} needs ${option('--checkpoint-dir')} (or a checkpoint file)`);
  const file = typeof o.resume === 'string' ? o.resume : o.resume ? checkpointPath : undefined;
  if (!file || !existsSync(file)) {
    if (typeof o.resume === 'string') throw new SlimError({ file: o.resume, problem: 'the checkpoint does not exist', fix: `check the ${option('--resume')} path` }, 'usage');
    return { history: [], epoch: 0, step: 0, seconds: 0 };
  }
  const ckpt = await readCheckpoint<CheckpointMeta>(file);
  const saved = ckpt.meta.fingerprint;
  refuseOtherCommand(file, saved, o);
  refuseDifferences(file, saved, fingerprint, o);
  try {
    plan.setWeights(ckpt.weights);
  } catch (e) {
    // Same settings, other tensors: the checkpoint is of another model (a --width or architecture change).
    throw new CheckpointMismatch(['startWeights'], { file, problem: `the checkpoint holds another model's weights (${(e as Error).message.split('\n')[0]})`, fix: `resume with the model the checkpoint was made for, or ${startOver(o)}` });
  }
  plan.setOptimizerState(ckpt.optimizer);
  const { history, epoch, step, seconds, gpuSeconds } = ckpt.meta;
  return { history, epoch, step, seconds, ...(gpuSeconds !== undefined ? { gpuSeconds } : {}), resumedFrom: epoch };
}

