/** Pareto fronts: the variants no other variant beats on both accuracy and a cost. */

export interface Candidate {
  id: string;
  /** Higher is better. */
  gain: number;
  /** Lower is better. */
  cost: number;
}

/** a dominates b: at least as good on both, strictly better on one. */
export function dominates(a: Candidate, b: Candidate): boolean {
  return a.gain >= b.gain && a.cost <= b.cost && (a.gain > b.gain || a.cost < b.cost);
}

/** Ids of the non-dominated candidates, cheapest first. */
export function paretoFront(candidates: readonly Candidate[]): string[] {
  return candidates
    .filter((c) => !candidates.some((o) => o !== c && dominates(o, c)))
    .sort((a, b) => a.cost - b.cost || b.gain - a.gain)
    .map((c) => c.id);
}
