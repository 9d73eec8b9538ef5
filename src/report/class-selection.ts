/**
 * Which classes a report shows per class: every one up to SHOWN_CLASSES; of more (ImageNet's 1,000 —
 * a chart of them crashed vega's parser and gave each class about a pixel), the ones whose top-1 the
 * variants change most against the first, in class order. report.json keeps every class.
 */
import type { ClassAccuracy } from '../runtime/evaluate.js';

export const SHOWN_CLASSES = 30;

export interface ShownClasses {
  /** Indices into per_class, in class order. */
  indices: number[];
  /** Classes there are. */
  of: number;
  /** A line saying which were chosen, when not all. */
  caption?: string;
}

export function shownClasses(variants: readonly { per_class: readonly ClassAccuracy[] }[]): ShownClasses {
  const base = variants[0]?.per_class ?? [];
  const all = base.map((_, i) => i);
  if (base.length <= SHOWN_CLASSES) return { indices: all, of: base.length };
  // The largest change of any variant from the first; with one variant, the least accurate classes.
  const change = (i: number): number => variants.length > 1
    ? Math.max(...variants.slice(1).map((v) => Math.abs((v.per_class[i]?.accuracy ?? 0) - base[i]!.accuracy)))
    : 1 - base[i]!.accuracy;
  const scored = all.filter((i) => base[i]!.total > 0);
  const chosen = [...scored].sort((a, b) => change(b) - change(a) || a - b).slice(0, SHOWN_CLASSES).sort((a, b) => a - b);
  const what = variants.length > 1 ? 'whose top-1 the variants change most' : 'least accurate';
  return { indices: chosen, of: base.length, caption: `the ${chosen.length} classes ${what}, of ${base.length} (every class is in report.json)` };
}
