/**
 * Whether two models' top-1 differ beyond chance on the same test images: McNemar's exact test on the
 * images exactly one of them gets right. Two variants 0.4 pt apart on 500 images may disagree on 14
 * images, 8 against 6 — as likely under "equally accurate" as not (p = 0.79). The bench stage keeps
 * which images each variant got right (`correct`, one bit per image) so the report and `slim
 * recommend` can say so. Pure.
 */

/** One bit per image, image i at bit i % 8 of byte i / 8, base64: 10,000 images take 1,668 characters. */
export function correctBits(predictions: ArrayLike<number>, labels: ArrayLike<number>, count: number): string {
  const bytes = new Uint8Array(Math.ceil(count / 8));
  for (let i = 0; i < count; i++) if (predictions[i] === labels[i]) bytes[i >> 3]! |= 1 << (i & 7);
  return Buffer.from(bytes).toString('base64');
}

function bitsOf(encoded: string, count: number): Uint8Array | undefined {
  const bytes = Buffer.from(encoded, 'base64');
  return bytes.length === Math.ceil(count / 8) ? bytes : undefined;
}

export interface PairedComparison {
  /** Images only the first got right, and only the second. */
  onlyFirst: number;
  onlySecond: number;
  /** Two-sided exact McNemar p: the chance of a split this uneven if both were equally accurate. */
  p: number;
}

/** Undefined when either side kept no per-image record, or they were scored on different images. */
export function comparePaired(a: { correct?: string; eval_images: number }, b: { correct?: string; eval_images: number }): PairedComparison | undefined {
  if (!a.correct || !b.correct || a.eval_images !== b.eval_images) return undefined;
  const [x, y] = [bitsOf(a.correct, a.eval_images), bitsOf(b.correct, b.eval_images)];
  if (!x || !y) return undefined;
  let onlyFirst = 0;
  let onlySecond = 0;
  for (let i = 0; i < a.eval_images; i++) {
    const bit = 1 << (i & 7);
    const [ra, rb] = [(x[i >> 3]! & bit) !== 0, (y[i >> 3]! & bit) !== 0];
    if (ra && !rb) onlyFirst++;
    else if (rb && !ra) onlySecond++;
  }
  return { onlyFirst, onlySecond, p: mcnemarExact(onlyFirst, onlySecond) };
}

/** min(1, 2·P(X ≤ min(b, c))) for X ~ Binomial(b + c, ½), summed in log space (2^-n underflows past n ≈ 1,074). */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  const k = Math.min(b, c);
  if (n === 0) return 1;
  let logPmf = -n * Math.LN2; // P(X = 0)
  let logSum = logPmf;
  for (let i = 0; i < k; i++) {
    logPmf += Math.log(n - i) - Math.log(i + 1);
    const [hi, lo] = logSum > logPmf ? [logSum, logPmf] : [logPmf, logSum];
    logSum = hi + Math.log1p(Math.exp(lo - hi));
  }
  return Math.min(1, 2 * Math.exp(logSum));
}

/** "p = 0.79" / "p = 0.047" / "p < 0.001": three decimals near 0.05, so a p under it never prints as 0.05. */
export function formatP(p: number): string {
  return p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(p < 0.1 ? 3 : 2)}`;
}

/** How a top-1 gap between `names` [first, second] reads, given its paired test. */
export function describePaired(c: PairedComparison, names: [string, string]): string {
  return `they disagree on ${c.onlyFirst + c.onlySecond} images (${c.onlyFirst} right only by ${names[0]}, ${c.onlySecond} only by ${names[1]}): ${formatP(c.p)}${c.p >= 0.05 ? ', a gap chance alone makes often' : ''}`;
}
