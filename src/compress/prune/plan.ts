/**
 * The pruner's one decision: how many channels each group keeps for a pruning fraction p, and which.
 * Scope 'layer' removes the same fraction of every group; 'global' ranks all channels together (scores
 * divided by their group's mean so that layers of different scale compare). Kept counts round up to a
 * multiple of `roundTo` (SIMD-friendly widths such as 8 or 16 run faster than the odd counts in between).
 */
import type { DependencyGraph } from './dependency-graph.js';
import type { Group } from './group.js';

export type Scope = 'layer' | 'global';

export interface PlanOptions {
  scope: Scope;
  /** Kept channel counts are multiples of this (or the group's full size); 1 disables rounding. */
  roundTo: number;
  /** No group loses more than this fraction of its channels. */
  maxRatio: number;
  /** Groups pruned by a ratio of their own (by group id), outside the search: 0 keeps a group whole. */
  fixed: ReadonlyMap<number, number>;
}

export interface Plan {
  p: number;
  /** Per component: 1 when its channels are removed. */
  removed: Uint8Array;
  /** Per group: channels kept. */
  kept: number[];
}

/** Kept count after rounding up to a multiple of `roundTo`, never above `size`, never below 1. */
export function roundKept(size: number, kept: number, roundTo: number): number {
  const k = Math.max(1, kept);
  return roundTo <= 1 ? Math.min(size, k) : Math.min(size, Math.ceil(k / roundTo) * roundTo);
}

/**
 * The rounding step in group channels: `roundTo` counts the root's channels, and where positions are
 * tied (G groups of a grouped conv) each group channel is G of them — 16 channels over 4 groups are 4 positions.
 */
export function roundStep(g: Group, roundTo: number): number {
  const perChannel = g.rootChannels / g.size;
  if (roundTo <= 1 || !Number.isInteger(perChannel)) return roundTo;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  return roundTo / gcd(roundTo, perChannel);
}

function removable(size: number, ratio: number): number {
  return Math.min(size - 1, Math.floor(size * ratio + 1e-9));
}

/** Channels each group keeps at pruning fraction p (rounded; fixed groups at their own ratio). */
export function keptCounts(dep: DependencyGraph, scores: readonly Float64Array[], p: number, o: PlanOptions): number[] {
  const groups = dep.groups;
  const count = groups.map((g) => removable(g.size, Math.min(o.fixed.get(g.id) ?? p, o.maxRatio)));
  if (o.scope === 'global') {
    const pool = groups.filter((g) => !o.fixed.has(g.id));
    const candidates: { score: number; group: number }[] = [];
    for (const g of pool) {
      count[g.id] = 0;
      const s = scores[g.id]!;
      const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) || 1;
      for (const v of s) candidates.push({ score: v / mean, group: g.id });
    }
    candidates.sort((a, b) => a.score - b.score);
    let budget = Math.floor(p * pool.reduce((a, g) => a + g.size, 0) + 1e-9);
    for (const c of candidates) {
      if (budget <= 0) break;
      const g = groups[c.group]!;
      if (count[g.id]! >= removable(g.size, o.maxRatio)) continue;
      count[g.id]!++;
      budget--;
    }
  }
  return groups.map((g) => roundKept(g.size, g.size - count[g.id]!, roundStep(g, o.roundTo)));
}

/** Remove the lowest-scored channels of each group down to `kept`. */
export function planFromCounts(dep: DependencyGraph, scores: readonly Float64Array[], kept: readonly number[], p: number): Plan {
  const removed = new Uint8Array(dep.groupOf.length);
  dep.groups.forEach((g) => {
    // Ties go to the higher channel index so that results are reproducible.
    const order = Array.from(scores[g.id]!, (s, i) => ({ s, i })).sort((a, b) => a.s - b.s || b.i - a.i);
    for (const { i } of order.slice(0, g.size - kept[g.id]!)) removed[g.components[i]!] = 1;
  });
  return { p, removed, kept: [...kept] };
}

export function planRemoval(dep: DependencyGraph, scores: readonly Float64Array[], p: number, o: PlanOptions): Plan {
  return planFromCounts(dep, scores, keptCounts(dep, scores, p, o), p);
}

/**
 * Rounding makes kept counts jump (a group of 16 rounded to 8 keeps 8 or 16), so the fraction that
 * meets a MAC budget usually undershoots it. Give channels back, one rounding step at a time, to the
 * most-pruned group whose step still fits, until none fits.
 */
export function refill(dep: DependencyGraph, kept: readonly number[], o: PlanOptions, fits: (kept: number[]) => boolean): number[] {
  const current = [...kept];
  for (;;) {
    const candidates = dep.groups
      .filter((g) => !o.fixed.has(g.id) && current[g.id]! < g.size)
      .sort((a, b) => current[a.id]! / a.size - current[b.id]! / b.size);
    const next = candidates.find((g) => {
      const trial = [...current];
      trial[g.id] = roundKept(g.size, current[g.id]! + 1, roundStep(g, o.roundTo));
      return fits(trial);
    });
    if (!next) return current;
    current[next.id] = roundKept(next.size, current[next.id]! + 1, roundStep(next, o.roundTo));
  }
}
