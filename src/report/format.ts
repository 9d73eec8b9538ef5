/** Number formatting shared by the CLI tables and reports. */
import type { EpochRecord, TrainProgress } from '../engine/train.js';

/** Binary units, named as such (KiB, MiB, GiB): what `ls -lh` and file managers count in. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  return inUnits(bytes, 1024, [['KiB', 1], ['MiB', 2], ['GiB', 2]]);
}

/** The first unit whose rounded figure stays below `step` (1,048,575 B is 1.00 MiB, not "1024.0 KiB"). */
function inUnits(n: number, step: number, units: readonly [string, number][]): string {
  for (const [i, [unit, digits]] of units.entries()) {
    const text = (n / step ** (i + 1)).toFixed(digits);
    if (Number(text) < step || i === units.length - 1) return `${text} ${unit}`;
  }
  throw new Error('unreachable: units is not empty');
}

/** 11173962 → "11.17 M"; null (not known) → a dash. */
export function formatCount(n: number | null): string {
  if (n === null) return '—';
  if (n < 1e3) return String(n);
  return inUnits(n, 1000, [['k', 1], ['M', 2], ['G', 2]]);
}

/** [0.485, 0.456, 0.406]: per-channel statistics for a log line, without float noise. */
export function formatNumbers(values: readonly number[]): string {
  return `[${values.map((v) => Number(v.toPrecision(4))).join(', ')}]`;
}

/** A change in percentage points with its sign: +1.00 pt, −0.25 pt. */
export function formatPointChange(pt: number): string {
  const size = Math.abs(pt).toFixed(2);
  // A change that rounds to nothing has no sign to show ("−0.00 pt" read as a loss).
  return `${pt < 0 && Number(size) > 0 ? '−' : '+'}${size} pt`;
}

/** A class's accuracy, or a dash for a class with no images (0 of 0 is not 0 %). */
export function formatClassAccuracy(c: { accuracy: number; total: number }): string {
  return c.total > 0 ? formatPercent(c.accuracy, 1) : '—';
}

export function formatPercent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)} %`;
}

/** A plain-text table with right-aligned numeric columns. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => cells.every((r) => /^[-\d.,% ]+\s*\w*$/.test(r[i] ?? '') || r[i] === ''));
  const line = (r: string[]): string =>
    r.map((c, i) => (numeric[i] && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/**
 * A training progress bar's phase text: epoch, running loss (the distillation loss when `distilled`),
 * accuracy (and speed) while training; the test images scored so far while evaluating.
 */
export function trainingPhaseText(p: TrainProgress, speed = true, distilled = false): string {
  const what = p.phase === 'eval'
    ? (p.evaluated ? `evaluating ${p.evaluated.done}/${p.evaluated.total}` : 'evaluating')
    : `${distilled ? 'KD ' : ''}loss ${p.loss.toFixed(3)} acc ${formatPercent(p.accuracy, 1)}${speed ? ` ${p.imagesPerSecond.toFixed(0)} img/s` : ''}`;
  // Epoch −1: the model scored before the first step (TrainOptions.scoreStart).
  return p.epoch < 0 ? `before training: ${what} ` : `epoch ${p.epoch + 1}/${p.epochs} ${what} `;
}

/** Said once before a distilled run's epochs: why its training loss sits apart from its test loss. */
export const KD_LOSS_NOTE = 'note: train KD loss is the distillation loss α·CE(labels) + (1−α)·T²·KL(teacher ‖ student), not the cross-entropy the test loss is';

/**
 * The line an epoch leaves above the bar: what the bar showed in passing, and its test top-1. A distilled
 * run's training loss is α·CE + (1−α)·T²·KL, named so: beside the test loss (cross-entropy) it reads as a bug.
 */
export function epochLine(e: EpochRecord, epochs: number, distilled = false): string {
  return `epoch ${e.epoch}/${epochs}: train ${distilled ? 'KD ' : ''}loss ${e.trainLoss.toFixed(3)}, train top-1 ${formatPercent(e.trainAccuracy, 1)}; test loss ${e.testLoss.toFixed(3)}, test top-1 ${formatPercent(e.testAccuracy)} (${e.seconds.toFixed(1)} s)`;
}
