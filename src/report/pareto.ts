/** Pareto fronts: the variants no other variant beats on both accuracy and a cost. */

export interface Candidate {
  id: string;
  /** Higher is better. */
  gain: number;
  /** Lower is better. */
  cost: number;
}

/**
 * a dominates b: at least as good on both, strictly better on one. `tied(a, b)`: their costs cannot be told
 * apart (timings within each other's noise); a more accurate candidate then dominates at its cost.
 */
export function dominates(a: Candidate, b: Candidate, tied: (a: Candidate, b: Candidate) => boolean = () => false): boolean {
  if (a.gain > b.gain && tied(a, b)) return true;
  return a.gain >= b.gain && a.cost <= b.cost && (a.gain > b.gain || a.cost < b.cost);
}

/** Ids of the non-dominated candidates, cheapest first. */
export function paretoFront<C extends Candidate>(candidates: readonly C[], tied?: (a: C, b: C) => boolean): string[] {
  return candidates
    .filter((c) => !candidates.some((o) => o !== c && dominates(o, c, tied as ((a: Candidate, b: Candidate) => boolean) | undefined)))
    .sort((a, b) => a.cost - b.cost || b.gain - a.gain)
    .map((c) => c.id);
}
