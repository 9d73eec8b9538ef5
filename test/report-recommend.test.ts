/**
 * Pareto fronts and `recommend` on hand-made variants whose right answers are worked out by hand in
 * the comments; the limit parsers; the command's usage errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunManifest, StageRecord, VariantBench } from '../src/pipeline/manifest.js';
import { otherBenchLines, stagesIntro, versusBaseline } from '../src/report/columns.js';
import { comparableLatencies, latencyRatio, latencyTied } from '../src/report/latency-ratio.js';
import { buildRunReport, unrecoveredPruneNote } from '../src/report/run-report.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { paretoFront } from '../src/report/pareto.js';
import { noiseNote, parseSize, parseTop1, recommend } from '../src/report/recommend.js';
import { comparePaired, correctBits, formatP, mcnemarExact } from '../src/report/paired.js';
import { runSlim } from './helpers/cli.js';
import { compareToFirst, renderBenchTable } from '../src/cli/commands/bench.js';

function variant(id: string, sizeKB: number, ms: number, top1: number): VariantBench {
  return {
    id, kind: 'quantize', sha256: id, file: `models/${id}.onnx`, size_bytes: sizeKB * 1024, gzip_bytes: sizeKB * 900, params: 1000, nonzero_params: 1000, macs: 1e6,
    latency_ms: { p50: ms, p90: ms, p99: ms, mean: ms }, latency_batch: 1, throughput_ips: 1000 / ms, throughput_batch: 32, peak_rss_bytes: 1, threads: 2,
    top1, top5: 0.99, eval_images: 10000, per_class: [],
  };
}

// fp32: big, slow, best. int8: 4× smaller, faster, −0.1 pt. pruned: smaller, fastest, −1 pt. bad: dominated by int8.
const fp32 = variant('fp32', 2800, 4.0, 0.85);
const int8 = variant('int8', 720, 1.6, 0.849);
const pruned = variant('pruned', 380, 1.1, 0.84);
const bad = variant('bad', 900, 2.0, 0.80);
const ALL = [fp32, int8, pruned, bad];

describe('paired top-1 comparison (McNemar, exact)', () => {
  it('p-values equal the binomial sums, worked with exact integers (Python: min(1, 2·Σ comb(n, i) / 2ⁿ))', () => {
    const oracle: [number, number, number][] = [[5, 15, 0.04138946533203125], [8, 6, 0.79052734375], [0, 7, 0.015625], [120, 80, 0.0056851559967503055], [3, 3, 1], [0, 0, 1], [1000, 1100, 0.030720707864242296]];
    for (const [b, c, p] of oracle) expect(mcnemarExact(b, c), `${b} vs ${c}`).toBeCloseTo(p, 12);
    // Near 0.05 three decimals: p = 0.0456 must not read as 0.05.
    expect([formatP(0.0456), formatP(0.79052734375), formatP(0.0004)]).toEqual(['p = 0.046', 'p = 0.79', 'p < 0.001']);
  });

  it('counts the images exactly one variant gets right, from the bits the bench keeps', () => {
    const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0];
    const a = { eval_images: 11, correct: correctBits([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1], labels, 11) }; // 10 right, the last wrong
    const b = { eval_images: 11, correct: correctBits([0, 1, 9, 9, 4, 5, 6, 7, 8, 9, 0], labels, 11) }; // 2 and 3 wrong, the last right
    expect(comparePaired(a, b)).toEqual({ onlyFirst: 2, onlySecond: 1, p: 1 });
    expect(comparePaired(a, { eval_images: 10, correct: b.correct })).toBeUndefined(); // other images
    expect(comparePaired(a, { eval_images: 11 })).toBeUndefined(); // an older manifest
  });

  it('slim bench prints the top-1 change of each model against the first, with its paired p', () => {
    const labels = new Array<number>(500).fill(1);
    const rows = [
      { ...variant('a', 2000, 4, 0.8), file: 'a.onnx', eval_images: 500, correct: correctBits(labels.map((_, i) => (i < 400 ? 1 : 0)), labels, 500) },
      { ...variant('b', 500, 1, 0.796), file: 'b.onnx', eval_images: 500, correct: correctBits(labels.map((_, i) => (i >= 8 && i < 406 ? 1 : 0)), labels, 500) },
    ];
    expect(renderBenchTable(rows)).toContain('\ntop-1 of b.onnx vs a.onnx: −0.40 pt; they disagree on 14 images (6 right only by b.onnx, 8 only by a.onnx): p = 0.79, a gap chance alone makes often');
    // Without per-image records (older JSON), nothing is claimed.
    expect(renderBenchTable(rows.map(({ correct: _c, ...r }) => r))).not.toMatch(/top-1 of/);
    // The JSON's comparisons say the same for scripts, with the latency per round of turns.
    const turns = [{ ...rows[0]!, turn_p50_ms: [4, 4, 8, 4] }, { ...rows[1]!, turn_p50_ms: [1, 2, 2, 1] }];
    const [c] = compareToFirst(turns);
    expect(c).toMatchObject({ file: 'b.onnx', versus: 'a.onnx', top1: { only_this_right: 6, only_versus_right: 8 }, latency: { rounds: 4 } });
    expect(c!.top1!.change_pt).toBeCloseTo(-0.4, 10);
    expect(c!.top1!.p).toBeCloseTo(0.79, 2);
    expect(c!.latency!.ratio).toBeCloseTo(0.25, 10);
    expect(compareToFirst(rows)[0]!.latency).toBeUndefined(); // not timed in turns: no per-round ratio
  });

  it('slim bench says how the models were timed: in turns of processes on the host, of pages in the browser', () => {
    const rows = [{ ...variant('a', 2000, 4, 0.8), file: 'a.onnx' }, { ...variant('b', 500, 1, 0.79), file: 'b.onnx' }];
    expect(renderBenchTable(rows, true)).toContain('\ntimed in turns of 10 runs, each model in a process of its own');
    // How many runs the latencies come from, and why so many under --runs auto.
    const counted = rows.map((r) => ({ ...r, latency_runs: 1000 }));
    expect(renderBenchTable(counted, true, 'auto')).toContain("\nlatency: 1000 timed runs per model, on 2 threads, of one image each (--runs auto: about 2 s of the slowest model's runs, 100 to 1000)\ntimed in turns");
    expect(renderBenchTable(counted, true, 300)).toContain('\nlatency: 1000 timed runs per model, on 2 threads, of one image each\n');
    // The warm-up and thread count the figures hold for (a trial found the threads only in --json).
    const warmed = counted.map((r) => ({ ...r, warmup_runs: 10, threads: 1 }));
    expect(renderBenchTable(warmed, true, 300)).toContain('\nlatency: 1000 timed runs per model after 10 untimed warm-up runs, on 1 thread, of one image each\n');
    // A model exported for a fixed batch runs its whole batch each time (it said "batch-1" for those too).
    const fixedBatch = [counted[0]!, { ...counted[1]!, latency_batch: 4 }];
    expect(renderBenchTable(fixedBatch, true, 300)).toContain('\nlatency: 1000 timed runs per model, on 2 threads, of one image each (of its fixed batch for b.onnx: 4)\n');
    expect(renderBenchTable(rows, false)).not.toContain('timed in turns');
    const web = rows.map((r) => ({ ...r, target: 'web' as const, runtime: 'onnxruntime-web 1.30.0 (WebAssembly) in Chromium 156', threads: 2 }));
    expect(renderBenchTable(web, true)).toContain('\ntimed in the browser: onnxruntime-web 1.30.0 (WebAssembly) in Chromium 156, 2 thread(s), in turns of 10 runs, each model in a page of its own');
    expect(renderBenchTable(web.slice(0, 1))).toMatch(/\ntimed in the browser: onnxruntime-web 1\.30\.0 \(WebAssembly\) in Chromium 156, 2 thread\(s\)$/m);
  });

  it('recommend says whether a top-1 gap is more than chance', () => {
    // 500 images: the choice gets images 0–399 right; the other misses 8 of those and gets 6 others.
    const labels = new Array<number>(500).fill(1);
    const choicePred = labels.map((_, i) => (i < 400 ? 1 : 0));
    const otherPred = labels.map((_, i) => (i < 8 ? 0 : i < 400 ? 1 : i < 406 ? 1 : 0));
    const choice = { ...variant('big', 2000, 4, 0.8), eval_images: 500, correct: correctBits(choicePred, labels, 500) };
    const small = { ...variant('small', 500, 1, 0.796), eval_images: 500, correct: correctBits(otherPred, labels, 500) };
    const r = recommend([choice, small], {});
    expect(r.lines).toContain('Also on the front: small — 79.60 % top-1, 1.00 ms, 500.0 KiB (4.00× faster, 4.00× smaller, 0.40 pt less accurate (2 of 500 test images; they disagree on 14 images (8 right only by big, 6 only by small): p = 0.79, a gap chance alone makes often)).');
    expect(r.lines).toContain("Consider small: on these 500 test images its top-1 cannot be told from big's (p = 0.79), and it is 4.00× faster — more test images would settle which is more accurate.");
    // A gap the images do tell apart (40 vs 0) names no alternative.
    const clear = { ...small, top1: 0.72, correct: correctBits(labels.map((_, i) => (i < 360 ? 1 : 0)), labels, 500) };
    expect(recommend([choice, clear], {}).lines.join('\n')).not.toMatch(/Consider/);
    // Nor one that is only smaller, not faster.
    const slower = { ...small, latency_ms: { p50: 6, p90: 6, p99: 6, mean: 6 } };
    expect(recommend([choice, slower], {}).lines.join('\n')).not.toMatch(/Consider/);
  });
});

describe('latency compared per round of turns', () => {
  it('is the median of the per-round ratios, with their quartiles; without turns, the ratio of the p50s', () => {
    const a = { latency_ms: { p50: 10 }, turn_p50_ms: [10, 10, 20, 20, 10] };
    const b = { latency_ms: { p50: 10 }, turn_p50_ms: [5, 6, 10, 8, 5] };
    // Per round b/a: 0.5, 0.6, 0.5, 0.4, 0.5 → sorted 0.4 0.5 0.5 0.5 0.6: median and quartiles 0.5.
    const ba = latencyRatio(b, a);
    expect(ba.ratio).toBeCloseTo(0.5, 12);
    expect(ba.spread![0]).toBeCloseTo(0.5, 12);
    expect(ba.spread![1]).toBeCloseTo(0.5, 12);
    expect(latencyRatio(a, b).ratio).toBeCloseTo(2, 12);
    // An even round count: the median of log-ratios, so each direction is the other's inverse
    // (medians of plain ratios would say 1.05 one way and 1/1.01 the other).
    const x = { latency_ms: { p50: 1 }, turn_p50_ms: [1, 1, 1, 1] };
    const y = { latency_ms: { p50: 1 }, turn_p50_ms: [1.1, 1.0, 1.2, 0.9] };
    expect(latencyRatio(y, x).ratio * latencyRatio(x, y).ratio).toBeCloseTo(1, 12);
    expect(latencyRatio(y, x).ratio).toBeCloseTo(Math.sqrt(1.1 * 1.0), 12);
    expect(latencyRatio({ latency_ms: { p50: 3 } }, { latency_ms: { p50: 4 } })).toEqual({ ratio: 0.75 });
    // Timed apart (another round count): p50s.
    expect(latencyRatio({ ...b, turn_p50_ms: [5, 5] }, a)).toEqual({ ratio: 1 });
  });

  it('bench, recommend and the report compare by rounds, where load made two p50s equal', () => {
    // The machine got busy halfway: both p50s read 4 ms, but in every round small took half big's time.
    const big = { ...variant('big', 2000, 4, 0.8), file: 'big.onnx', turn_p50_ms: [2, 2, 2, 8, 8, 8] };
    const small = { ...variant('small', 500, 4, 0.79), file: 'small.onnx', turn_p50_ms: [1, 1, 1, 4, 4, 4] };
    expect(renderBenchTable([big, small], true)).toContain('\nlatency of small.onnx vs big.onnx: ×0.50, the median over 6 rounds of turns (half of them between ×0.50 and ×0.50)');
    expect(recommend([big, small], {}).lines.join('\n')).toContain('(2.00× faster, 4.00× smaller, 1.00 pt less accurate');
    expect(versusBaseline(small, big)).toMatch(/^×0\.25 size, ×0\.50 \(0\.50–0\.50\) latency, −1\.00 pt/);
  });

  it('recommend ranks by them too: equal top-1 and size, the faster per round wins; one common scale for all', () => {
    const a = { ...variant('a', 500, 4, 0.8), turn_p50_ms: [2, 2, 8, 8] };
    const b = { ...variant('b', 500, 4, 0.8), turn_p50_ms: [1, 1, 4, 4] }; // p50s equal, half a's time every round
    const r = recommend([a, b], {});
    expect(r.choice).toBe('b');
    expect(r.lines).toContain('Not a: b is at least as accurate, fast and small.');
    const scale = comparableLatencies([a, b]);
    expect([scale.get(a), scale.get(b)]).toEqual([4, 2]); // a's p50, and b at ×0.5 of it
    // A model timed at a fixed batch of several images gets no per-image latency line.
    const batched = { ...b, file: 'b.onnx', latency_batch: 4 };
    expect(renderBenchTable([{ ...a, file: 'a.onnx' }, batched], true)).not.toMatch(/latency of b\.onnx/);
  });

  it('"N× faster" is on the one common scale the ranking and the front use, so a front variant is never "no cheaper"', () => {
    // Against ref, mid's median ratio is 1/4 and small's 1/8: on that scale small is 2× faster than mid,
    // which is why it is on the front. Round by round mid/small is 1, 4, 1 — their own median says equal,
    // and before, the line explaining small's place on the front called it "no cheaper" (a trial on the
    // demo run saw "Also on the front: pruned-ft — … (no cheaper, 1.79 pt less accurate)").
    const ref = { ...variant('ref', 4000, 8, 0.9), turn_p50_ms: [8, 8, 8] };
    const mid = { ...variant('mid', 1000, 2, 0.89), turn_p50_ms: [1, 2, 4] };
    const small = { ...variant('small', 500, 1, 0.88), turn_p50_ms: [1, 0.5, 4] };
    const r = recommend([ref, mid, small], { maxSizeBytes: 2000 * 1024 });
    expect(r.choice).toBe('mid');
    expect(r.lines.find((l) => l.startsWith('Also on the front: small'))).toContain('small — 88.00 % top-1, 1.00 ms, 500.0 KiB (2.00× faster, 2.00× smaller, 1.00 pt less accurate');
  });

  it('two variants equal on top-1, latency and size are a tie on the front, not "no cheaper, 0.00 pt less accurate"', () => {
    const a = variant('a', 500, 2, 0.8);
    const r = recommend([a, { ...a, id: 'b' }], {});
    expect(r.candidates).toEqual(['a', 'b']);
    expect(r.lines).toContain('Also on the front: b — 80.00 % top-1, 2.00 ms, 500.0 KiB (a tie: the same top-1, latency and size).');
  });

  it('--max-latency-ms judges the latencies the ranking and the chart use, not the raw p50s', () => {
    // b's p50 equals a's (4 ms) but it took half a's time in every round: on the common scale, 2 ms.
    const a = { ...variant('a', 500, 4, 0.81), turn_p50_ms: [2, 2, 8, 8] };
    const b = { ...variant('b', 500, 4, 0.8), turn_p50_ms: [1, 1, 4, 4] };
    const r = recommend([a, b], { maxLatencyMs: 3 });
    expect([...r.latencyMs]).toEqual([['a', 4], ['b', 2]]);
    expect(r.choice).toBe('b');
    expect(r.lines[0]).toBe('Recommended: b (models/b.onnx) — batch-1 p50 latency 2.00 ms ≤ 3.00 ms.');
    expect(r.lines).toContain('Over the limits: a — batch-1 p50 latency 4.00 ms > 3.00 ms (33.3 % over).');
  });
});

describe('Pareto fronts', () => {
  it('keep exactly the variants no other beats on both axes', () => {
    expect(paretoFront(ALL.map((v) => ({ id: v.id, gain: v.top1, cost: v.latency_ms.p50 })))).toEqual(['pruned', 'int8', 'fp32']);
    // Equal points do not dominate each other; a tie on cost with less gain is dominated.
    expect(paretoFront([{ id: 'a', gain: 1, cost: 1 }, { id: 'b', gain: 1, cost: 1 }, { id: 'c', gain: 0.5, cost: 1 }])).toEqual(['a', 'b']);
    // Costs the timing cannot tell apart: the more accurate one dominates, even where its median was a little slower.
    const near = [{ id: 'kd', gain: 0.2067, cost: 0.275 }, { id: 'labels', gain: 0.1767, cost: 0.266 }];
    expect(paretoFront(near)).toEqual(['labels', 'kd']);
    expect(paretoFront(near, () => true)).toEqual(['kd']);
    // latencyTied: the per-round ratio's quartiles hold 1 for a model timed against itself, not for one twice as slow.
    const turns = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2, 0.85, 1.0];
    const same = { latency_ms: { p50: 1 }, turn_p50_ms: turns.map((t, i) => t * (i % 2 ? 1.02 : 0.98)) };
    expect(latencyTied({ latency_ms: { p50: 1 }, turn_p50_ms: turns }, same)).toBe(true);
    expect(latencyTied({ latency_ms: { p50: 1 }, turn_p50_ms: turns }, { latency_ms: { p50: 2 }, turn_p50_ms: turns.map((t) => 2 * t) })).toBe(false);
    // Without turns (the browser, older manifests) there is no spread to judge by.
    expect(latencyTied({ latency_ms: { p50: 1 } }, { latency_ms: { p50: 1 } })).toBe(false);
  });
});

describe('recommend', () => {
  it('picks the most accurate variant within the limits and says what else fits', () => {
    // Within 1 MiB and 2 ms: int8 (84.9 %), pruned (84.0 %), bad (80.0 %, dominated by int8).
    const r = recommend(ALL, { maxSizeBytes: 1024 ** 2, maxLatencyMs: 2, minTop1: 0.8 });
    expect(r.choice).toBe('int8');
    expect(r.candidates).toEqual(['int8', 'pruned']);
    expect(r.lines[0]).toBe('Recommended: int8 (models/int8.onnx) — file size 720.0 KiB ≤ 1.00 MiB, batch-1 p50 latency 1.60 ms ≤ 2.00 ms, top-1 84.90 % ≥ 80.00 %.');
    expect(r.lines[1]).toBe('It has the highest top-1 of the 3 variants within the limits.');
    expect(r.lines).toContain('Also on the front: pruned — 84.00 % top-1, 1.10 ms, 380.0 KiB (1.45× faster, 1.89× smaller, 0.90 pt less accurate (90 of 10,000 test images)).');
    expect(r.lines).toContain('Not bad: int8 is at least as accurate, fast and small.');
    expect(r.lines.at(-1)).toMatch(/^Over the limits: fp32 — file size 2.73 MiB > 1.00 MiB \(173\.4 % over\), batch-1 p50 latency 4\.00 ms > 2\.00 ms \(100\.0 % over\)\.$/);
  });

  it('breaks top-1 ties by latency, then size', () => {
    const twin = variant('twin', 700, 1.5, 0.849);
    expect(recommend([int8, twin], { minTop1: 0.5 }).choice).toBe('twin');
  });

  it('says clearly when nothing fits, which variant is closest and which limit is nearest', () => {
    // top-1 ≥ 93 %: best 85 % (fp32), 8 pt short (8.6 % of the bound, what ranks it). ≤ 1 ms: best 1.1 ms (pruned), 10 % over. ≤ 3 MiB: all fit.
    // Worst miss per variant: fp32 max(0.086 (top1), 3.0 (latency)) = 3.0; int8 max(0.6, 0.087) = 0.6;
    // pruned max(0.1, 0.097) = 0.1; bad 1.0 → closest: pruned.
    const r = recommend(ALL, { maxSizeBytes: 3 * 1024 ** 2, maxLatencyMs: 1, minTop1: 0.93 });
    expect(r.choice).toBeUndefined();
    expect(r.closest?.id).toBe('pruned');
    expect(r.closest?.misses.map((m) => m.limit)).toEqual(['latency', 'top1']);
    expect(r.nearestLimit).toMatchObject({ limit: 'top1', best: { id: 'fp32' } });
    expect(r.nearestLimit!.best.miss).toBeCloseTo((0.93 - 0.85) / 0.93, 12);
    expect(r.lines[0]).toBe('No variant of 4 meets all the limits.');
    expect(r.lines).toContain('file size ≤ 3.00 MiB: met by fp32, int8, pruned, bad.');
    expect(r.lines).toContain('batch-1 p50 latency ≤ 1.00 ms: met by none — the best is pruned at 1.10 ms (10.0 % over).');
    expect(r.lines).toContain('Nearest to being met: the top-1 limit (8.00 pt short, by fp32).');
  });

  it('a miss too small for the usual precision shows the exact figures, not "262.5 KiB > 262.5 KiB (0.0 % over)"', () => {
    const one = { ...fp32, size_bytes: 268_774 };
    const r = recommend([one], { maxSizeBytes: 268_773 });
    expect(r.lines).toContain('Closest: fp32 — misses file size 268,774 B > 268,773 B (under 0.1 % over).');
    expect(r.lines).toContain('file size ≤ 268,773 B: met by none — the best is fp32 at 268,774 B (under 0.1 % over).');
  });

  it('notices when each limit is met by someone but no one meets all', () => {
    // ≤ 400 KB: pruned only; top-1 ≥ 0.85: fp32 only.
    const r = recommend(ALL, { maxSizeBytes: 400 * 1024, minTop1: 0.85 });
    expect(r.choice).toBeUndefined();
    expect(r.nearestLimit).toBeUndefined();
    expect(r.lines).toContain('Each limit is met by some variant, but no variant meets them all at once.');
  });

  it('says what the choice costs in accuracy when no --min-top1 bounds it, and names near misses (a trial: 27 % recommended over 66 %, unsaid)', () => {
    // A run of a trial: pruning without a fine-tune took 69 % to 27 %; int8 kept 66 % and is 7.6 % over 1 ms.
    const f = { ...variant('fp32', 2700, 2.0, 0.688), kind: 'train' as const };
    const q = { ...variant('int8', 740, 1.076, 0.656), kind: 'quantize' as const, from: 'fp32' };
    const p = { ...variant('pruned', 780, 0.91, 0.284), kind: 'prune' as const, from: 'fp32' };
    const pq = { ...variant('pruned-int8', 237, 0.79, 0.274), kind: 'quantize' as const, from: 'pruned' };
    const bySize = recommend([f, q, p, pq], { maxSizeBytes: 300 * 1000 });
    expect(bySize.choice).toBe('pruned-int8');
    expect(bySize.lines).toContain('Accuracy: pruned-int8 scores 41.40 pt below fp32 (68.80 %), and no --min-top1 bounds that loss: pass one (e.g. --min-top1 66%) to rule out variants that lost too much.');
    const byLatency = recommend([f, q, p, pq], { maxLatencyMs: 1 });
    expect(byLatency.choice).toBe('pruned');
    expect(byLatency.lines).toContain('Near miss: int8 is 37.20 pt more accurate and misses only batch-1 p50 latency 1.08 ms > 1.00 ms (7.6 % over) — a limit that much higher, or timings on a quieter machine, may let it in.');
    // fp32 misses by 100 %: no near miss. With a --min-top1 the loss is the user's own bound: not repeated.
    expect(byLatency.lines.filter((l) => l.startsWith('Near miss'))).toHaveLength(1);
    expect(recommend([f, q, p, pq], { maxLatencyMs: 1, minTop1: 0.2 }).lines.some((l) => l.startsWith('Accuracy:'))).toBe(false);
    // A loss under 2 pt is not worth the line.
    expect(recommend(ALL, { maxSizeBytes: 400 * 1024 }).lines.some((l) => l.startsWith('Accuracy:'))).toBe(false);

    // Size and top-1 each met by someone, by no one together: the advice is for what the closest misses (top-1), not latency too.
    const both = recommend([f, q, p, pq], { maxSizeBytes: 300 * 1000, minTop1: 0.6 });
    expect(both.closest?.id).toBe('pruned-int8');
    expect(both.lines.at(-1)).toBe('To get there: more training epochs, more training images, distillation from a larger model, or less aggressive pruning raise top-1.');
  });

  it('advises from what the closest variant already is: no "quantize" for one that is int8 and pruned', () => {
    const f = { ...variant('fp32', 2800, 4, 0.85), kind: 'train' as const };
    const p = { ...variant('pruned', 900, 2, 0.84), kind: 'prune' as const, from: 'fp32' };
    const q = { ...variant('pruned-int8', 260, 1, 0.84), kind: 'quantize' as const, from: 'pruned' };
    expect(recommend([f, p, q], { maxSizeBytes: 100 * 1024 }).lines).toContain('To get there: prune further (a lower target_macs) or start from a narrower model (width).');
    expect(recommend([f], { maxSizeBytes: 100 * 1024 }).lines).toContain('To get there: int8 quantization (about 4× smaller) or structured pruning shrink the file.');
  });
});

describe('noisy timings', () => {
  it('are called out: a p90 far above the p50 means a busy machine, and small latency gaps may be noise', () => {
    const quiet = recommend(ALL, { maxLatencyMs: 2 });
    expect(quiet.lines.some((l) => l.startsWith('Note: The latencies spread'))).toBe(false);
    const busy = [fp32, int8, { ...pruned, latency_ms: { ...pruned.latency_ms, p90: pruned.latency_ms.p50 * 3 } }, bad];
    const r = recommend(busy, { maxLatencyMs: 2 });
    expect(r.lines.at(-1)).toMatch(/^Note: The latencies spread widely while they were measured \(p90 = 3\.0× p50 for pruned\): the machine was busy/);
    // Also when nothing fits.
    expect(recommend(busy, { maxLatencyMs: 0.1 }).lines.at(-1)).toMatch(/^Note: The latencies spread widely/);
    // The report's markdown and HTML put their own "Note:" before it (it read "Note: Note:").
    expect(noiseNote(busy)[0]).toMatch(/^The latencies spread/);
    // And under `slim bench`'s table.
    expect(renderBenchTable(busy)).toMatch(/\nnote: p90 is 1\.5× p50 or more for models\/pruned\.onnx: the machine was busy/);
    expect(renderBenchTable(ALL)).not.toMatch(/note: p90/);
  });

  it("say what other processes took while the bench timed, when it counted that (Linux), even where the runs' spread stayed narrow", () => {
    expect(noiseNote(ALL, { other_load_cores: 1.4, cores: 2 })).toEqual([
      'Other processes kept 1.4 of the 2 cores busy while the variants were timed: the latencies are slower than on a quiet machine (slim run --rerun <bench stage> measures again).',
    ]);
    // With the run's own command, as a report has it (the recipe and the run folder: it named neither).
    expect(noiseNote(ALL, { other_load_cores: 1.4, cores: 2, rerun_command: "slim run r.yaml --run-dir 'my run' --rerun bench" })[0]).toContain("(slim run r.yaml --run-dir 'my run' --rerun bench measures again)");
    expect(recommend(ALL, { maxLatencyMs: 2 }, { other_load_cores: 1.4, cores: 2 }).lines.at(-1)).toMatch(/^Note: Other processes kept 1\.4 of the 2 cores busy/);
    // A quiet machine, or a manifest from before the count: nothing.
    expect(noiseNote(ALL, { other_load_cores: 0.1, cores: 2 })).toEqual([]);
    expect(noiseNote(ALL, {})).toEqual([]);
  });
});

describe('limit parsing', () => {
  it('reads SI and binary sizes as what they say (1 MB = 1,000,000 bytes, 1 MiB = 1,048,576)', () => {
    expect(parseSize('3MB')).toBe(3_000_000);
    expect(parseSize('3 MiB')).toBe(3 * 1024 ** 2);
    expect(parseSize('2.5mib')).toBe(2.5 * 1024 ** 2);
    expect(parseSize('500kb')).toBe(500_000);
    expect(parseSize('500 KiB')).toBe(500 * 1024);
    expect(parseSize('1.5G')).toBe(1.5e9);
    expect(parseSize('12345')).toBe(12345);
    expect(parseSize('12345 B')).toBe(12345);
    expect(parseSize('3 parsecs')).toBeUndefined();
    expect(parseSize('3 MIBS')).toBeUndefined();
  });
  it('reads top-1 as a fraction or a percentage', () => {
    expect(parseTop1('0.93')).toBe(0.93);
    expect(parseTop1('93%')).toBeCloseTo(0.93, 12);
    expect(parseTop1('93')).toBeUndefined();
    expect(parseTop1('0')).toBeUndefined();
  });
  it('turns bad limits into usage errors (exit 2) that say what to write', async () => {
    const r = await runSlim(['recommend', '--min-top1', '93']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--min-top1 takes a fraction in \(0, 1\] such as 0\.93, or a percentage such as 93%, got '93'/);
    // A wrong folder is the mistake to hear about first; then the missing limits.
    const nowhere = await runSlim(['recommend', '--run', '/nonexistent-run']);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/\/nonexistent-run: does not exist — pass a folder made by slim run or slim demo/);
    const runDir = mkdtempSync(path.join(tmpdir(), 'slim-recommend-'));
    writeFileSync(path.join(runDir, 'manifest.json'), JSON.stringify({
      version: 1, name: 'r', recipe: { file: 'r.yaml', sha256: '', text: '' }, data: { name: 'cifar10', train_images: 1, test_images: 1, sha256: '' },
      created: '', updated: '', machine: { cpu: '', cores: 2, os: '', node: '', slimkit: '' }, wall_seconds: 1, complete: true, gpu_price_per_hour: 2.5, stages: [],
    }));
    const none = await runSlim(['recommend', '--run', runDir]);
    rmSync(runDir, { recursive: true, force: true });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no limits given/);
    // A bare small number is a forgotten unit (it read as 3 bytes: "8958166.7 % over").
    const bare = await runSlim(['recommend', '--max-size', '3']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/--max-size 3 would be 3 bytes; write the unit: 3MB or 3MiB/);
  });
});

describe('a run timed on the host and in the browser', () => {
  const bench = (id: string, target: 'host' | 'web', scale: number): StageRecord => ({
    id, kind: 'bench', key: id, status: 'done', seconds: 1, gpu_seconds: 0, cost: 0, device: 'cpu',
    result: { threads: 2, runs: 100, batch: 32, target, ...(target === 'web' ? { runtime: 'onnxruntime-web 1.x (WebAssembly)' } : {}), eval_data: 'cifar10', variants: ALL.map((v) => ({ ...v, latency_ms: { ...v.latency_ms, p50: v.latency_ms.p50 * scale } })) },
  });
  const manifest = (stages: StageRecord[]): RunManifest => ({
    version: 1, name: 'two-benches', recipe: { file: 'r.yaml', sha256: '', text: '' }, data: { name: 'cifar10', train_images: 1, test_images: 1, sha256: '' },
    created: '', updated: '', machine: { cpu: '', cores: 2, os: '', node: '', slimkit: '' }, wall_seconds: 1, complete: true, gpu_price_per_hour: 2.5, stages,
  });

  it('speaks with the host timings (where a device bundle runs), lists the browser ones beside them, and takes the browser on request', () => {
    // The web bench ran last: before, it silently replaced the host numbers in the report and in recommend.
    const m = manifest([bench('bench-host', 'host', 1), bench('bench-web', 'web', 3)]);
    const report = buildRunReport(m, '/nowhere');
    expect(report.bench).toMatchObject({ stage: 'bench-host', target: 'host' });
    expect(report.variants.find((v) => v.id === 'int8')!.latency_ms.p50).toBeCloseTo(1.6, 9);
    expect(report.other_benches).toEqual([{ stage: 'bench-web', target: 'web', runtime: 'onnxruntime-web 1.x (WebAssembly)', p50_ms: { fp32: 12, int8: 1.6 * 3, pruned: 1.1 * 3, bad: 6 } }]);
    expect(otherBenchLines(report)[0]).toMatch(/^Also timed in stage 'bench-web' \(onnxruntime-web 1\.x \(WebAssembly\) — the browser, as the web bundle runs\): fp32 12\.000 ms, int8 4\.800 ms/);
    const web = buildRunReport(m, '/nowhere', { target: 'web' });
    expect(web.bench).toMatchObject({ stage: 'bench-web', target: 'web' });
    expect(web.variants.find((v) => v.id === 'int8')!.latency_ms.p50).toBeCloseTo(4.8, 9);
    // Only browser timings: those speak, unless the host is asked for.
    expect(buildRunReport(manifest([bench('bench-web', 'web', 3)]), '/nowhere').bench!.stage).toBe('bench-web');
    expect(buildRunReport(manifest([bench('bench-web', 'web', 3)]), '/nowhere', { target: 'host' }).variants).toEqual([]);
  });

  it('says when a pruned model left without fine-tuning lost top-1, unless a finetune stage starts from it', () => {
    const prune = (id: string, from: string, epochs: number): StageRecord => ({
      id, kind: 'prune', key: id, status: 'done', from, seconds: 1, gpu_seconds: 0, cost: 0, device: 'cpu',
      result: { mode: 'structured', macs_before: 2e6, macs_after: 1e6, params_before: 2000, params_after: 1000, steps: [], finetune_epochs: epochs },
    } as StageRecord);
    // pruned 84 % from fp32 85 %: 1 pt, within noise; bad 80 % from fp32: 5 pt, said.
    const stages = [prune('pruned', 'fp32', 0), prune('bad', 'fp32', 0), bench('bench-host', 'host', 1)];
    expect(unrecoveredPruneNote(buildRunReport(manifest(stages), '/nowhere'))).toBe(
      'bad scores 80.00 % against 85.00 % for fp32 (−5.00 pt): pruned without fine-tuning — add `finetune: { epochs: N }` to its prune stage (or a finetune stage from it); a few epochs usually win most of it back.',
    );
    expect(renderMarkdown(buildRunReport(manifest(stages), '/nowhere'), {})).toContain('> **Note:** bad scores 80.00 % against 85.00 % for fp32');
    // Fine-tuned in the stage, or by a later stage: nothing to say.
    expect(unrecoveredPruneNote(buildRunReport(manifest([prune('bad', 'fp32', 2), bench('bench-host', 'host', 1)]), '/nowhere'))).toBeUndefined();
    const finetune = { id: 'tuned', kind: 'finetune', key: 'tuned', status: 'done', from: 'bad', seconds: 1, gpu_seconds: 0, cost: 0, device: 'cpu' } as StageRecord;
    expect(unrecoveredPruneNote(buildRunReport(manifest([prune('bad', 'fp32', 0), finetune, bench('bench-host', 'host', 1)]), '/nowhere'))).toBeUndefined();
  });

  it('prices GPU time only where there was some (a CPU-only run was shown a $2.5/GPU-hour nobody set)', () => {
    expect(stagesIntro(buildRunReport(manifest([bench('bench-host', 'host', 1)]), '/nowhere'))).toMatch(/Every stage ran on the CPU: no GPU time, so no cost\.$/);
    const onGpu = { ...bench('bench-host', 'host', 1), device: 'cuda' } as StageRecord;
    expect(stagesIntro(buildRunReport(manifest([onGpu]), '/nowhere'))).toMatch(/Cost = GPU-seconds × \$2\.5\/GPU-hour \(the recipe's gpu_price_per_hour\); CPU stages cost 0 here\.$/);
  });

  it('--target web judges an int8 variant by the top-1 the browser computes (exact kernels), not this CPU\'s saturated one', async () => {
    // int8 scores 84.9 % here, 83.0 % on exact kernels (the browser's); --min-top1 84 % is met only here.
    const web = bench('bench-web', 'web', 3);
    const withExact = { ...web, result: { ...web.result!, variants: (web.result as { variants: VariantBench[] }).variants.map((v) => (v.id === 'int8' ? { ...v, top1_exact_kernels: 0.83 } : v)) } } as StageRecord;
    const runDir = mkdtempSync(path.join(tmpdir(), 'slim-recommend-web-'));
    try {
      writeFileSync(path.join(runDir, 'manifest.json'), JSON.stringify(manifest([bench('bench-host', 'host', 1), withExact])));
      const judge = async (target: string): Promise<{ choice: string; top1_from: string; assessed: { id: string; fits: boolean }[] }> => {
        const r = await runSlim(['recommend', runDir, '--target', target, '--min-top1', '84%', '--max-size', '800KiB', '--json']);
        return JSON.parse(r.stdout) as { choice: string; top1_from: string; assessed: { id: string; fits: boolean }[] };
      };
      const [host, browser] = [await judge('host'), await judge('web')];
      expect(host).toMatchObject({ choice: 'int8', top1_from: 'this machine' });
      expect(browser).toMatchObject({ choice: 'pruned', top1_from: 'exact int8 kernels (as the browser computes)' });
      expect(browser.assessed.find((a) => a.id === 'int8')!.fits).toBe(false);
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
