/** "Did you mean" for names the user typed: a zoo model, a recipe key, a pass, a target. */

/** Edit distance with swapped neighbours as one edit (optimal string alignment): 'prnue' is one from 'prune'. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** Names users bring from elsewhere for what slimkit calls otherwise: close in meaning, not in letters. */
const SYNONYMS: Readonly<Record<string, string>> = { gpu: 'cuda', nvidia: 'cuda', amd64: 'x64', x86_64: 'x64', aarch64: 'arm64', float32: 'fp32', float16: 'fp16', bfloat16: 'bf16' };

/**
 * The candidate within edit distance of a third of the word (at least 1), ignoring case, if any — or
 * the one a known synonym names ('gpu' is 'cuda', not 'cpu').
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  for (const [from, to] of Object.entries(SYNONYMS)) {
    const meant = candidates.find((c) => c.toLowerCase() === lower.replace(from, to));
    if (lower.includes(from) && meant) return meant;
  }
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** "did you mean 'x'? " when one is close, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const guess = closest(word, candidates);
  return guess ? `did you mean '${guess}'? ` : '';
}
