/**
 * Why `slim bench` times models in turns: two copies of one model (their true latency ratio is 1) are
 * timed the old way, one after the other, and in turns, while other processes load the CPU from halfway
 * through (the moment is set from a quiet calibration run). Each trial prints the ratio of the two p50s
 * each way, and in turns also the median of the per-round ratios (report/latency-ratio.ts), what slimkit
 * compares models by; a ratio far from 1 is a "faster" that is only the moment the model ran. One JSON line.
 *
 *   npx tsx bench/bench-turns.ts [--model M.onnx] [--trials 5] [--threads 1] [--runs 100] [--load 2] [--target web]
 *
 * --target web times them in headless Chromium (onnxruntime-web), a page per model, as `slim bench
 * --target web` does; one after the other is then a browser per model.
 * Without --model, a random-weight ResNet18-CIFAR export of the acceptance shape (as bench/prune-latency.ts).
 * --load is the number of busy-loop processes started halfway.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchmarkInChildren } from '../src/runtime/benchmark-isolated.js';
import { benchmarkInBrowser, type WebModel } from '../src/runtime/benchmark-web.js';
import type { TimedResult } from '../src/runtime/benchmark.js';
import { readModel } from '../src/onnx/io.js';
import { dataInputs } from '../src/onnx/graph.js';
import { latencyRatio } from '../src/report/latency-ratio.js';
import { emit, modelOrAcceptanceExport, scratchDir } from './prune-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    trials: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1' },
    runs: { type: 'string', default: '100' },
    load: { type: 'string', default: String(availableParallelism()) },
    target: { type: 'string', default: 'host' },
  },
});
if (values.target !== 'host' && values.target !== 'web') throw new Error(`--target is host or web, got ${values.target}`);
const web = values.target === 'web';
const dir = scratchDir();
const source = modelOrAcceptanceExport(values.model, dir);
const [a, b] = ['a.onnx', 'b.onnx'].map((name) => path.join(dir, name)) as [string, string];
copyFileSync(source, a);
copyFileSync(source, b);
const options = { threads: Number(values.threads), runs: Number(values.runs), warmupRuns: 10, throughputBatch: 0 };
const graph = await readModel(source);
const inputs = dataInputs(graph).map((v) => ({ name: v.name, dtype: v.dtype, ...(v.shape ? { dims: v.shape } : {}) }));
const webModel = (file: string): WebModel => ({ file, inputs, batch: 1, throughputBatch: 0 });

/** The models timed together (in turns), on the host in processes or in the browser in pages. */
async function timeTogether(files: string[]): Promise<TimedResult[]> {
  return web ? benchmarkInBrowser(files.map(webModel), options) : benchmarkInChildren(files.map((file) => ({ file })), options);
}

/**
 * Busy-loop processes started after `delayMs`; the returned function stops them. Started through a shell
 * that exits at once, so they are not this process's children: the browser's idle wait (idlePool in
 * benchmark-web.ts) counts the CPU of this process's descendants and would take them for the browser.
 */
function loadAfter(delayMs: number, processes: number): () => void {
  const pids: number[] = [];
  if (!Number.isFinite(delayMs) || processes === 0) return () => undefined;
  const timer = setTimeout(() => {
    for (let i = 0; i < processes; i++) {
      const started = execFileSync('sh', ['-c', `"${process.execPath}" -e 'for (;;) {}' >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
      pids.push(Number(started.trim()));
    }
  }, delayMs);
  return () => {
    clearTimeout(timer);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
}

async function oneAfterAnother(): Promise<number> {
  const [first] = await timeTogether([a]);
  const [second] = await timeTogether([b]);
  return second!.latencyMs.p50 / first!.latencyMs.p50;
}

/** In turns: the ratio of the p50s, and the median of the per-round ratios (what reports compare by). */
async function inTurns(): Promise<[number, number]> {
  const [first, second] = await timeTogether([a, b]);
  const row = (r: typeof first) => ({ latency_ms: r!.latencyMs, turn_p50_ms: r!.turnP50Ms });
  return [second!.latencyMs.p50 / first!.latencyMs.p50, latencyRatio(row(second), row(first)).ratio];
}

async function timed<T>(scheme: () => Promise<T>, delayMs: number, load: number): Promise<{ ratio: T; seconds: number }> {
  const stop = loadAfter(delayMs, load);
  const start = performance.now();
  try {
    return { ratio: await scheme(), seconds: (performance.now() - start) / 1000 };
  } finally {
    stop();
  }
}

const load = Number(values.load);
const quiet = { sequential: await timed(oneAfterAnother, Infinity, 0), turns: await timed(inTurns, Infinity, 0) };
const show = (x: number): string => x.toFixed(3);
process.stderr.write(`quiet: one after another ${show(quiet.sequential.ratio)} in ${quiet.sequential.seconds.toFixed(1)} s; in turns p50s ${show(quiet.turns.ratio[0])}, per round ${show(quiet.turns.ratio[1])} in ${quiet.turns.seconds.toFixed(1)} s\n`);
const sequential: number[] = [];
const turnsP50: number[] = [];
const turnsPaired: number[] = [];
for (let t = 0; t < Number(values.trials); t++) {
  // Alternate which scheme goes first, so neither always follows the other's load.
  const s = () => timed(oneAfterAnother, (quiet.sequential.seconds * 1000) / 2, load).then((r) => sequential.push(r.ratio));
  const i = () => timed(inTurns, (quiet.turns.seconds * 1000) / 2, load).then((r) => {
    turnsP50.push(r.ratio[0]);
    turnsPaired.push(r.ratio[1]);
  });
  if (t % 2 === 0) await s().then(i);
  else await i().then(s);
  process.stderr.write(`trial ${t + 1}: one after another ${show(sequential.at(-1)!)}; in turns p50s ${show(turnsP50.at(-1)!)}, per round ${show(turnsPaired.at(-1)!)}\n`);
}
const worst = (ratios: number[]): number => Math.max(...ratios.map((r) => Math.max(r, 1 / r)));
emit({
  bench: 'bench-turns',
  model: values.model ?? 'random-weight ResNet18-CIFAR export',
  target: values.target,
  threads: options.threads,
  runs: options.runs,
  load_processes: load,
  quiet_ratio: { one_after_another: quiet.sequential.ratio, in_turns_p50s: quiet.turns.ratio[0], in_turns_per_round: quiet.turns.ratio[1] },
  loaded_ratios: { one_after_another: sequential, in_turns_p50s: turnsP50, in_turns_per_round: turnsPaired },
  worst_ratio: { one_after_another: worst(sequential), in_turns_p50s: worst(turnsP50), in_turns_per_round: worst(turnsPaired) },
});
