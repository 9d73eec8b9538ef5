/** Number formatting shared by the CLI tables and reports. */
import type { TrainProgress } from '../engine/train.js';

/** Binary units, named as such (KiB, MiB, GiB): what `ls -lh` and file managers count in. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(2)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** 11173962 → "11.17 M"; null (not known) → a dash. */
export function formatCount(n: number | null): string {
  if (n === null) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** [0.485, 0.456, 0.406]: per-channel statistics for a log line, without float noise. */
export function formatNumbers(values: readonly number[]): string {
  return `[${values.map((v) => Number(v.toPrecision(4))).join(', ')}]`;
}

/** A change in percentage points with its sign: +1.00 pt, −0.25 pt. */
export function formatPointChange(pt: number): string {
  return `${pt >= 0 ? '+' : '−'}${Math.abs(pt).toFixed(2)} pt`;
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
 * A training progress bar's phase text: epoch, running loss, accuracy (and speed) while training; the
 * test images scored so far while evaluating.
 */
export function trainingPhaseText(p: TrainProgress, speed = true): string {
  const what = p.phase === 'eval'
    ? (p.evaluated ? `evaluating ${p.evaluated.done}/${p.evaluated.total}` : 'evaluating')
    : `loss ${p.loss.toFixed(3)} acc ${formatPercent(p.accuracy, 1)}${speed ? ` ${p.imagesPerSecond.toFixed(0)} img/s` : ''}`;
  return `epoch ${p.epoch + 1}/${p.epochs} ${what} `;
}
