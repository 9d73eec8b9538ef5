/**
 * `slim recommend`: the best variant of a run under size / latency / accuracy limits, with the reasons,
 * or — when nothing fits — which variant comes closest and which limit is nearest to being met.
 * Pure: report variants and limits in, a decision and its explanation out.
 */
import type { VariantBench } from '../pipeline/manifest.js';
import { formatBytes, formatPercent } from './format.js';
import { comparePaired, describePaired, formatP } from './paired.js';
import { comparableLatencies } from './latency-ratio.js';
import { otherLoadNote } from '../runtime/cpu-load.js';

export interface Limits {
  maxSizeBytes?: number;
  /** Batch-1 p50 latency. */
  maxLatencyMs?: number;
  /** Fraction in (0, 1]. */
  minTop1?: number;
}

export type LimitName = 'size' | 'latency' | 'top1';

export interface LimitCheck {
  limit: LimitName;
  bound: number;
  value: number;
  met: boolean;
  /** How far off, relative to the bound: 0 when met, 0.24 = 24 % over (or short). */
  miss: number;
}

export interface Assessment {
  id: string;
  checks: LimitCheck[];
  fits: boolean;
  /** The largest relative miss over the limits (0 when it fits). */
  worstMiss: number;
}

export interface PerLimit {
  limit: LimitName;
  bound: number;
  met: string[];
  /** The variant with the best value for this limit. */
  best: { id: string; value: number; miss: number };
}

export interface Recommendation {
  limits: Limits;
  assessed: Assessment[];
  /** The chosen variant (when some fit). */
  choice?: string;
  /** Variants within the limits and on their Pareto front (top-1 ↑, latency ↓, size ↓). */
  candidates: string[];
  /** When nothing fits: the variant with the smallest worst miss, and the limit nearest to being met. */
  closest?: { id: string; misses: LimitCheck[] };
  nearestLimit?: PerLimit;
  perLimit: PerLimit[];
  /** The explanation, one sentence a line. */
  lines: string[];
  /**
   * Each variant's batch-1 p50 latency as judged (by id): the first variant's p50 and the others' by their
   * per-round ratio to it, where the bench timed them in turns (comparableLatencies), else their p50.
   */
  latencyMs: Map<string, number>;
}

const LABEL: Record<LimitName, string> = { size: 'file size', latency: 'batch-1 p50 latency', top1: 'top-1' };

export function formatLimitValue(limit: LimitName, v: number): string {
  if (limit === 'size') return formatBytes(v);
  if (limit === 'latency') return `${v.toFixed(2)} ms`;
  return formatPercent(v);
}

/** `latency`: the variant's latency on the run's common scale (comparableLatencies), as ranked and charted. */
function checksFor(v: VariantBench, limits: Limits, latency: number): LimitCheck[] {
  const checks: LimitCheck[] = [];
  const over = (limit: LimitName, value: number, bound: number): void => {
    checks.push({ limit, bound, value, met: value <= bound, miss: value <= bound ? 0 : value / bound - 1 });
  };
  if (limits.maxSizeBytes !== undefined) over('size', v.size_bytes, limits.maxSizeBytes);
  if (limits.maxLatencyMs !== undefined) over('latency', latency, limits.maxLatencyMs);
  if (limits.minTop1 !== undefined) {
    const met = v.top1 >= limits.minTop1;
    checks.push({ limit: 'top1', bound: limits.minTop1, value: v.top1, met, miss: met ? 0 : (limits.minTop1 - v.top1) / limits.minTop1 });
  }
  return checks;
}

/** A bound and a value as printed; exact where the usual precision would print the same for both ("262.5 KiB > 262.5 KiB"). */
function limitPair(limit: LimitName, bound: number, value: number): [string, string] {
  const [b, v] = [formatLimitValue(limit, bound), formatLimitValue(limit, value)];
  return b === v && bound !== value ? [exactLimitValue(limit, bound), exactLimitValue(limit, value)] : [b, v];
}

function describeCheck(c: LimitCheck): string {
  const [bound, value] = limitPair(c.limit, c.bound, c.value);
  return `${LABEL[c.limit]} ${value} ${c.limit === 'top1' ? (c.met ? '≥' : '<') : c.met ? '≤' : '>'} ${bound}` + (c.met ? '' : ` (${missText(c.limit, c.value, c.bound, c.miss)})`);
}

function exactLimitValue(limit: LimitName, v: number): string {
  if (limit === 'size') return `${v.toLocaleString('en-US')} B`;
  if (limit === 'latency') return `${v.toPrecision(6)} ms`;
  return `${(v * 100).toPrecision(6)} %`;
}

/** How far a value misses its bound: top-1 in points (a relative % of a percentage misleads), the others in %. */
function missText(limit: LimitName, value: number, bound: number, miss: number): string {
  if (limit === 'top1') return `${((bound - value) * 100).toFixed(2)} pt short`;
  return miss < 0.0005 ? 'under 0.1 % over' : `${(miss * 100).toFixed(1)} % over`;
}

export function recommend(variants: readonly VariantBench[], limits: Limits, load: TimingLoad = {}): Recommendation {
  // One latency per variant on one scale (latency-ratio.ts: per round of turns where the bench took
  // them), for the limit, the ranking, the front and every "× faster" alike: a pair's own median ratio
  // can order two variants otherwise than their ratios to the reference do.
  const latency = comparableLatencies(variants);
  const ms = (v: VariantBench): number => latency.get(v)!;
  const latencyMs = new Map(variants.map((v) => [v.id, ms(v)]));
  /** Better first: higher top-1, then lower latency, then smaller file. */
  const rank = (a: VariantBench, b: VariantBench): number => b.top1 - a.top1 || ms(a) - ms(b) || a.size_bytes - b.size_bytes;
  const assessed = variants.map((v): Assessment => {
    const checks = checksFor(v, limits, ms(v));
    return { id: v.id, checks, fits: checks.every((c) => c.met), worstMiss: Math.max(0, ...checks.map((c) => c.miss)) };
  });
  const byId = new Map(variants.map((v) => [v.id, v]));
  const perLimit = (['size', 'latency', 'top1'] as const)
    .filter((l) => assessed[0]?.checks.some((c) => c.limit === l))
    .map((limit): PerLimit => {
      const rows = assessed.map((a) => ({ id: a.id, check: a.checks.find((c) => c.limit === limit)! }));
      const best = [...rows].sort((a, b) => (limit === 'top1' ? b.check.value - a.check.value : a.check.value - b.check.value))[0]!;
      return { limit, bound: best.check.bound, met: rows.filter((r) => r.check.met).map((r) => r.id), best: { id: best.id, value: best.check.value, miss: best.check.miss } };
    });

  const fitting = variants.filter((v) => assessed.find((a) => a.id === v.id)!.fits);
  const lines: string[] = [];
  if (fitting.length > 0) {
    // Within the limits, drop anything another fitting variant beats on all three axes.
    const beats = (a: VariantBench, b: VariantBench): boolean =>
      a.top1 >= b.top1 && ms(a) <= ms(b) && a.size_bytes <= b.size_bytes && (a.top1 > b.top1 || ms(a) < ms(b) || a.size_bytes < b.size_bytes);
    const candidates = fitting.filter((v) => !fitting.some((o) => o !== v && beats(o, v))).sort(rank);
    const choice = candidates[0]!;
    const checks = assessed.find((a) => a.id === choice.id)!.checks;
    lines.push(`Recommended: ${choice.id} (${choice.file}) — ${checks.length ? checks.map(describeCheck).join(', ') : `top-1 ${formatPercent(choice.top1)}`}.`);
    lines.push(
      fitting.length === 1
        ? `It is the only one of ${variants.length} variants within the limits.`
        : `It has the highest top-1 of the ${fitting.length} variants within the limits${choice.top1 === candidates[1]?.top1 ? ' (ties broken by latency, then size)' : ''}.`,
    );
    for (const other of candidates.slice(1)) {
      lines.push(`Also on the front: ${other.id} — ${formatPercent(other.top1)} top-1, ${ms(other).toFixed(2)} ms, ${formatBytes(other.size_bytes)} (${tradeoff(other, choice, ms)}).`);
    }
    // The highest top-1 may be ahead by chance: the cheapest front variant the test images cannot tell from it is worth naming.
    const indistinct = candidates.slice(1).filter((o) => o.top1 < choice.top1 && ms(o) < ms(choice) && (comparePaired(choice, o)?.p ?? 0) >= 0.05);
    const fastest = [...indistinct].sort((a, b) => ms(a) - ms(b))[0];
    if (fastest) {
      lines.push(`Consider ${fastest.id}: on these ${fastest.eval_images.toLocaleString('en')} test images its top-1 cannot be told from ${choice.id}'s (${formatP(comparePaired(choice, fastest)!.p)}), and it is ${(ms(choice) / ms(fastest)).toFixed(2)}× faster — more test images would settle which is more accurate.`);
    }
    for (const v of fitting.filter((f) => !candidates.includes(f))) {
      const by = fitting.find((o) => o !== v && beats(o, v))!;
      lines.push(`Not ${v.id}: ${by.id} is at least as accurate, fast and small.`);
    }
    for (const a of assessed.filter((x) => !x.fits)) lines.push(`Over the limits: ${a.id} — ${a.checks.filter((c) => !c.met).map(describeCheck).join(', ')}.`);
    lines.push(...accuracyLines(choice, variants, assessed, limits, byId));
    lines.push(...noiseNote(variants, load).map((l) => `Note: ${l}`));
    return { limits, assessed, choice: choice.id, candidates: candidates.map((c) => c.id), perLimit, lines, latencyMs };
  }

  const closestA = [...assessed].sort((a, b) => a.worstMiss - b.worstMiss || rank(byId.get(a.id)!, byId.get(b.id)!))[0];
  lines.push(`No variant of ${variants.length} meets ${assessed[0]?.checks.length === 1 ? 'the limit' : 'all the limits'}.`);
  if (!closestA) return { limits, assessed, candidates: [], perLimit, lines: ['The run has no benchmarked variants.'], latencyMs };
  const misses = closestA.checks.filter((c) => !c.met);
  lines.push(`Closest: ${closestA.id} — misses ${misses.map(describeCheck).join(' and ')}${closestA.checks.some((c) => c.met) ? `; meets ${closestA.checks.filter((c) => c.met).map((c) => LABEL[c.limit]).join(' and ')}` : ''}.`);
  for (const p of perLimit) {
    lines.push(
      p.met.length
        ? `${LABEL[p.limit]} ${p.limit === 'top1' ? '≥' : '≤'} ${formatLimitValue(p.limit, p.bound)}: met by ${p.met.join(', ')}.`
        : `${LABEL[p.limit]} ${p.limit === 'top1' ? '≥' : '≤'} ${limitPair(p.limit, p.bound, p.best.value)[0]}: met by none — the best is ${p.best.id} at ${limitPair(p.limit, p.bound, p.best.value)[1]} (${missText(p.limit, p.best.value, p.bound, p.best.miss)}).`,
    );
  }
  const unmet = perLimit.filter((p) => p.met.length === 0).sort((a, b) => a.best.miss - b.best.miss);
  const nearest = unmet[0];
  if (nearest) {
    lines.push(`Nearest to being met: the ${LABEL[nearest.limit]} limit (${missText(nearest.limit, nearest.best.value, nearest.bound, nearest.best.miss)}, by ${nearest.best.id}).`);
  } else {
    lines.push('Each limit is met by some variant, but no variant meets them all at once.');
  }
  // Each limit met by someone: the advice is for what the closest variant misses, not for every limit there is.
  lines.push(advice(unmet.length ? unmet.map((p) => p.limit) : misses.map((c) => c.limit), byId.get(closestA.id), byId), ...noiseNote(variants, load).map((l) => `Note: ${l}`));
  return { limits, assessed, candidates: [], closest: { id: closestA.id, misses }, ...(nearest ? { nearestLimit: nearest } : {}), perLimit, lines, latencyMs };
}

/** A top-1 loss worth saying out loud: the recommendation is within the limits, but the limits may not say what the user wants. */
const NOTABLE_LOSS = 0.02;
/** A variant over a latency or size limit by less than this is a near miss (latencies on a busy machine move that much). */
const NEAR_MISS = 0.1;

/**
 * What the choice costs in accuracy, said when it is much: a variant far below the most accurate one, with
 * no --min-top1 to bound the loss (a trial was recommended a 27 % model cut from a 69 % one, unsaid), and
 * more accurate variants that miss a latency or size limit narrowly.
 */
function accuracyLines(choice: VariantBench, variants: readonly VariantBench[], assessed: readonly Assessment[], limits: Limits, byId: ReadonlyMap<string, VariantBench>): string[] {
  const lines: string[] = [];
  const best = [...variants].sort((a, b) => b.top1 - a.top1)[0]!;
  const pt = (a: VariantBench, b: VariantBench): string => `${((a.top1 - b.top1) * 100).toFixed(2)} pt`;
  if (limits.minTop1 === undefined && best.top1 - choice.top1 >= NOTABLE_LOSS) {
    lines.push(`Accuracy: ${choice.id} scores ${pt(best, choice)} below ${best.id} (${formatPercent(best.top1)}), and no --min-top1 bounds that loss: pass one (e.g. --min-top1 ${Math.floor(best.top1 * 100 - 2)}%) to rule out variants that lost too much.`);
  }
  for (const a of assessed.filter((x) => !x.fits)) {
    const v = byId.get(a.id)!;
    const misses = a.checks.filter((c) => !c.met);
    if (v.top1 - choice.top1 < NOTABLE_LOSS || misses.some((c) => c.limit === 'top1' || c.miss >= NEAR_MISS)) continue;
    lines.push(`Near miss: ${v.id} is ${pt(v, choice)} more accurate and misses only ${misses.map(describeCheck).join(' and ')} — a limit that much higher, or timings on a quieter machine, may let it in.`);
  }
  return lines;
}

function tradeoff(v: VariantBench, choice: VariantBench, ms: (v: VariantBench) => number): string {
  const pt = (choice.top1 - v.top1) * 100;
  const faster = ms(choice) / ms(v);
  const smaller = choice.size_bytes / v.size_bytes;
  const parts = [faster > 1 ? `${faster.toFixed(2)}× faster` : '', smaller > 1 ? `${smaller.toFixed(2)}× smaller` : ''].filter(Boolean);
  // In images too: on a few hundred test images a point or two is a handful of images.
  const images = Math.round((pt / 100) * Math.min(choice.eval_images, v.eval_images));
  // Paired on the same images (when the bench kept them): is the gap more than chance?
  const paired = comparePaired(choice, v);
  // Equal on all three (two copies of one model): on the front together, neither ahead.
  if (parts.length === 0 && pt === 0) return 'a tie: the same top-1, latency and size';
  return `${parts.join(', ') || 'no cheaper'}, ${pt.toFixed(2)} pt less accurate (${images} of ${v.eval_images.toLocaleString('en')} test images${paired ? `; ${describePaired(paired, [choice.id, v.id])}` : ''})`;
}

/** How widely the benchmark's latencies spread (p90 / p50): above 1.5, the machine was busy while timing. */
export const NOISY_SPREAD = 1.5;

/** What the bench stage counted of other processes' CPU while it timed (BenchResult). */
export interface TimingLoad {
  other_load_cores?: number | undefined;
  cores?: number | undefined;
  /** The command that re-measures (slim run RECIPE [--run-dir DIR] --rerun BENCH). */
  rerun_command?: string | undefined;
}

/** A note when the timings are too noisy to rank variants that differ by tens of percent (recommend, the run report). */
export function noiseNote(variants: readonly VariantBench[], load: TimingLoad = {}): string[] {
  const notes: string[] = [];
  const again = load.rerun_command ?? 'slim run --rerun <bench stage>';
  const spread = (v: VariantBench): number => v.latency_ms.p90 / Math.max(v.latency_ms.p50, 1e-9);
  const worst = [...variants].sort((a, b) => spread(b) - spread(a))[0];
  if (worst && spread(worst) >= NOISY_SPREAD) {
    notes.push(`The latencies spread widely while they were measured (p90 = ${spread(worst).toFixed(1)}× p50 for ${worst.id}): the machine was busy, and differences of tens of percent may be noise — measure again on a quiet machine (${again}) before relying on them.`);
  }
  const other = load.other_load_cores !== undefined && load.cores ? { otherCores: load.other_load_cores, cores: load.cores } : undefined;
  if (otherLoadNote(other)) {
    notes.push(`Other processes kept ${other!.otherCores.toFixed(1)} of the ${other!.cores} cores busy while the variants were timed: the latencies are slower than on a quiet machine (${again} measures again).`);
  }
  return notes;
}

/** What made a variant: the stage kinds along its `from` chain. */
function lineage(v: VariantBench, byId: ReadonlyMap<string, VariantBench>): Set<string> {
  const kinds = new Set<string>();
  for (let at: VariantBench | undefined = v, guard = 0; at && guard < 100; at = at.from ? byId.get(at.from) : undefined, guard++) kinds.add(at.kind);
  return kinds;
}

/** How to meet the limits missed, from what the closest variant already is (no "quantize" for an int8 model). */
function advice(unmet: LimitName[], closest: VariantBench | undefined, byId: ReadonlyMap<string, VariantBench>): string {
  const made = closest ? lineage(closest, byId) : new Set<string>();
  const [int8, pruned] = [made.has('quantize'), made.has('prune')];
  const shrink = int8 && pruned ? 'prune further (a lower target_macs) or start from a narrower model (width)'
    : int8 ? 'structured pruning of the float model before int8 shrinks it further'
      : pruned ? 'int8 quantization (about 4× smaller) or pruning further shrink the file'
        : 'int8 quantization (about 4× smaller) or structured pruning shrink the file';
  const tips: Record<LimitName, string> = {
    size: shrink,
    latency: int8 && pruned ? 'prune further (a lower target_macs) or a narrower model cut latency; check `slim doctor` on the device'
      : `structured pruning (a lower target_macs)${int8 ? '' : ' and int8'} cut latency; check \`slim doctor\` on the device`,
    top1: 'more training epochs, more training images, distillation from a larger model, or less aggressive pruning raise top-1',
  };
  return `To get there: ${(unmet.length ? unmet : (['size', 'latency', 'top1'] as LimitName[])).map((l) => tips[l]).join('; ')}.`;
}

/**
 * "3MB", "500 kB", "2.5MiB", "123456" (bytes) → bytes. SI and binary prefixes mean what they say
 * (1 MB = 1,000,000 bytes, 1 MiB = 1,048,576 bytes, as `slim bench` prints sizes).
 */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(i)?b?|b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = m[2] === undefined ? 0 : 'kmg'.indexOf(m[2].toLowerCase()) + 1;
  const base = m[3] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** power);
}

/** "0.93", "93%", "93 %" → 0.93. */
export function parseTop1(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%)?\s*$/.exec(text);
  if (!m) return undefined;
  const v = Number(m[1]) / (m[2] ? 100 : 1);
  return v > 0 && v <= 1 ? v : undefined;
}
