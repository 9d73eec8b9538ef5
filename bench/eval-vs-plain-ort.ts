/**
 * slimkit's `evaluate` against the loop a user would write by hand with onnxruntime-node, on the full
 * CIFAR-10 test set, same model, same threads, same batch size, one process.
 *
 *   npx tsx bench/eval-vs-plain-ort.ts --model /tmp/r18.onnx [--data-dir D] [--threads 2] [--batch 256] [--limit N] [--rounds 2]
 *
 * Prints one JSON line: {ours_s, plain_s, ratio, top1_ours, top1_plain, identical, ...}. Times cover the
 * evaluation loops only (sessions are created and the data read before timing). Each round runs both
 * loops, alternating which goes first (ours-plain, plain-ours, ...), and ours_s / plain_s are the best
 * round of each, so a busy neighbour process or a warm cache favours neither side. `identical` compares
 * every image's prediction, in every round; ours_cpu_s / plain_cpu_s are process CPU times, which a
 * loaded machine disturbs less than wall time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'data-dir': { type: 'string' },
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '256' },
    limit: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '2' },
  },
});
if (!values.model) {
  console.error('usage: npx tsx bench/eval-vs-plain-ort.ts --model M.onnx [--data-dir D] [--threads 2] [--batch 256] [--limit N]');
  process.exit(2);
}
const modelPath = values.model;
const dataDir = values['data-dir'] ?? process.env.SLIM_DATA_DIR ?? path.resolve(repoRoot, '../shared/data/cifar10');
const threads = Number(values.threads);
const batchSize = Number(values.batch);
const limit = Number(values.limit);
const rounds = Number(values.rounds);

interface LoopResult {
  seconds: number;
  /** Process CPU time (user + system) during the loop: less sensitive to other processes than wall time. */
  cpuSeconds: number;
  top1: number;
  predictions: Uint16Array;
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

const file = readFileSync(path.join(dataDir, 'test_batch.bin'));
const set = await loadCifar10('test', { dataDir, limit });

/** The hand-written loop: normalize each batch from the file's bytes, run, argmax. */
async function plainLoop(): Promise<LoopResult> {
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const count = Math.min(limit, file.length / 3073);
  const { mean, std } = CIFAR10_NORMALIZATION;
  const predictions = new Uint16Array(count);
  let correct = 0;
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let first = 0; first < count; first += batchSize) {
    const n = Math.min(batchSize, count - first);
    const input = new Float32Array(n * 3072);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const record = (first + i) * 3073;
      labels[i] = file[record]!;
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < 1024; p++) {
          input[i * 3072 + c * 1024 + p] = (file[record + 1 + c * 1024 + p]! / 255 - mean[c]!) / std[c]!;
        }
      }
    }
    const out = await session.run({ [inputName]: new ort.Tensor('float32', input, [n, 3, 32, 32]) });
    const logits = out[outputName]!.data as Float32Array;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < 10; j++) if (logits[i * 10 + j]! > logits[i * 10 + best]!) best = j;
      predictions[first + i] = best;
      if (best === labels[i]) correct++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuSeconds = cpuSince(cpu);
  await session.release();
  return { seconds, cpuSeconds, top1: correct / count, predictions };
}

async function ours(): Promise<LoopResult> {
  const model = await openSession(modelPath, { threads });
  try {
    const cpu = process.cpuUsage();
    const result = await evaluate(model, set, { batchSize, normalization: CIFAR10_NORMALIZATION, keepPredictions: true });
    return { seconds: result.seconds, cpuSeconds: cpuSince(cpu), top1: result.top1, predictions: result.predictions! };
  } finally {
    await model.close();
  }
}

const results: { ours: LoopResult[]; plain: LoopResult[] } = { ours: [], plain: [] };
for (let r = 0; r < rounds; r++) {
  if (r % 2 === 0) {
    results.ours.push(await ours());
    results.plain.push(await plainLoop());
  } else {
    results.plain.push(await plainLoop());
    results.ours.push(await ours());
  }
}
const best = (list: LoopResult[]): number => Math.min(...list.map((x) => x.seconds));
const same = (a: LoopResult, b: LoopResult): boolean => a.predictions.every((p, i) => p === b.predictions[i]);
const first = results.ours[0]!;
console.log(
  JSON.stringify({
    model: modelPath,
    images: Math.min(limit, set.labels.length),
    threads,
    batch: batchSize,
    ours_s: Number(best(results.ours).toFixed(3)),
    plain_s: Number(best(results.plain).toFixed(3)),
    ratio: Number((best(results.ours) / best(results.plain)).toFixed(4)),
    top1_ours: first.top1,
    top1_plain: results.plain[0]!.top1,
    identical: [...results.ours, ...results.plain].every((x) => same(x, first)),
    // How many classes the model predicts at all: 1 means "identical" says little (a random deep net often collapses).
    distinct_predictions: new Set(first.predictions).size,
    ours_cpu_s: Number(Math.min(...results.ours.map((x) => x.cpuSeconds)).toFixed(3)),
    plain_cpu_s: Number(Math.min(...results.plain.map((x) => x.cpuSeconds)).toFixed(3)),
    rounds_ours_s: results.ours.map((x) => Number(x.seconds.toFixed(3))),
    rounds_plain_s: results.plain.map((x) => Number(x.seconds.toFixed(3))),
  }),
);
