/**
 * Training logs read back: the JSON-lines files `--log` writes (slim train, distill, quantize --qat,
 * prune --finetune) as one series of epochs per run. A log a second run appended to starts a new
 * series at its 'start' record; a resumed run ('resume') and the later phase of a QAT run (after
 * 'phase_end') continue the one before. An epoch logged twice (a run killed after logging it and
 * resumed from the checkpoint before) counts as its last record; a line a crash cut off is skipped.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { inputError } from '../errors.js';
import { describeBinaryFile, fileError } from '../onnx/io.js';
import type { EpochJson } from './json-records.js';

export interface LoggedRun {
  /** The log's name, and which run of it when several were appended to one file. */
  name: string;
  file: string;
  /** What the run trained: the start record's graph name, when it has one. */
  model?: string;
  epochs: EpochJson[];
  /** The run stopped as diverged (a 'diverged' record) at this epoch. */
  divergedAt?: number;
  /** It ended with an 'end' record (a run still going, or killed, has none). */
  finished: boolean;
  /** Distilled (its start record names a teacher): its training loss is α·CE + (1−α)·T²·KL, not cross-entropy. */
  distilled: boolean;
  /** The model scored before the first step (a 'start_eval' record: a fine-tune's starting point), drawn at epoch 0. */
  start?: StartScore;
  /**
   * Later starting points: an iterative prune's model after each later cut, scored before its fine-tuning
   * (a 'start_eval' record at the epoch it continues from), drawn after that epoch's own point.
   */
  cuts?: (StartScore & { epoch: number })[];
}

export interface StartScore {
  test_top1: number;
  /** null where the loss was not finite. */
  test_loss: number | null;
}

export interface TrainingLog {
  runs: LoggedRun[];
  /** Lines that are not JSON records: cut off by a crash or a full disk. */
  tornLines: number;
}

interface Record_ {
  event?: unknown;
  epoch?: unknown;
  graph?: unknown;
  last_epoch?: unknown;
  teacher?: unknown;
  test_top1?: unknown;
  test_loss?: unknown;
}

export async function readTrainingLog(file: string): Promise<TrainingLog> {
  const bytes = await readFile(file).catch((e: unknown) => {
    throw fileError(file, e, 'read');
  });
  // A model (or another binary file) given for the log: named as such, not as a bad "line 22".
  if (bytes.subarray(0, 4096).includes(0)) {
    throw inputError({ file, problem: `is ${describeBinaryFile(bytes) ?? 'a binary file'}, not a training log`, fix: 'give the JSON-lines file a training command wrote with --log (slim train … --log run.jsonl)' });
  }
  const text = bytes.toString('utf8');
  const base = path.basename(file).replace(/\.jsonl?$/, '');
  const runs: { model?: string; epochs: Map<number, EpochJson>; divergedAt?: number; finished: boolean; distilled: boolean; start?: StartScore; cuts: Map<number, StartScore> }[] = [];
  let tornLines = 0;
  let records = 0;
  let previous: unknown;
  for (const [index, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let record: Record_;
    try {
      record = JSON.parse(line) as Record_;
    } catch {
      tornLines++;
      continue;
    }
    if (typeof record !== 'object' || record === null || typeof record.event !== 'string') {
      throw inputError({ file, where: `line ${index + 1}`, problem: 'is not a record of a slimkit training log (no "event")', fix: 'give the file a training command wrote with --log' });
    }
    records++;
    const event = record.event;
    const continues = event === 'resume' || (event === 'start' && previous === 'phase_end');
    if ((event === 'start' && !continues) || runs.length === 0) runs.push({ epochs: new Map(), finished: false, distilled: false, cuts: new Map() });
    const run = runs.at(-1)!;
    if (event === 'start' && typeof record.graph === 'string' && record.graph) run.model ??= record.graph;
    if (event === 'start' && typeof record.teacher === 'object' && record.teacher !== null) run.distilled = true;
    if (event === 'epoch' && typeof record.epoch === 'number') run.epochs.set(record.epoch, record as unknown as EpochJson);
    if (event === 'start_eval' && typeof record.test_top1 === 'number') {
      const score = { test_top1: record.test_top1, test_loss: typeof record.test_loss === 'number' ? record.test_loss : null };
      if (typeof record.epoch === 'number' && record.epoch > 0) run.cuts.set(record.epoch, score);
      else run.start = score;
    }
    // A resume carries the checkpoint's last epoch: a kill between writing it and logging it left no record.
    const carried = event === 'resume' ? record.last_epoch : undefined;
    if (typeof carried === 'object' && carried !== null && typeof (carried as Record_).epoch === 'number') {
      const epoch = (carried as Record_).epoch as number;
      if (!run.epochs.has(epoch)) run.epochs.set(epoch, { event: 'epoch', ...carried } as unknown as EpochJson);
    }
    if (event === 'diverged' && typeof record.epoch === 'number') run.divergedAt = record.epoch;
    run.finished = event === 'end' ? true : event === 'start' || event === 'resume' ? false : run.finished;
    previous = event;
  }
  if (records === 0) throw inputError({ file, problem: 'holds no training log records', fix: 'give the file a training command wrote with --log' });
  return {
    runs: runs.map((r, i) => ({
      name: runs.length > 1 ? `${base} (run ${i + 1})` : base,
      file,
      ...(r.model ? { model: r.model } : {}),
      epochs: [...r.epochs.values()].sort((a, b) => a.epoch - b.epoch),
      ...(r.divergedAt !== undefined ? { divergedAt: r.divergedAt } : {}),
      finished: r.finished,
      distilled: r.distilled,
      ...(r.start ? { start: r.start } : {}),
      ...(r.cuts.size ? { cuts: [...r.cuts].sort(([a], [b]) => a - b).map(([epoch, score]) => ({ epoch, ...score })) } : {}),
    })),
    tornLines,
  };
}
