/**
 * The acceptance checks of `slim quantize` (issue 4), measured the way a user would run them:
 *   - size, time: `slim quantize` (child process, 512 CIFAR-10 train images) on a ResNet18-CIFAR export of
 *     the acceptance shape (width 1, random weights unless --fp32 names a trained one);
 *   - latency: batch-1 p50 of fp32 vs int8 with the function `slim bench` uses, alternating models over
 *     several rounds so a busy neighbour hurts both alike (ratio per round, median and best reported);
 *   - fusion: the graph ORT actually runs (optimizedModelFilePath), with every op that still computes in float;
 *   - accuracy: `slim quantize --eval cifar10` on the trained peer (--peer, default /work/models/r18w025-torch.onnx).
 * One JSON line.
 *
 *   npx tsx bench/quantize-acceptance.ts [--fp32 M.onnx] [--peer P.onnx] [--threads 2] [--rounds 5] [--runs 100]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ortKernels } from '../src/compress/quantize/index.js';
import { benchmark } from '../src/runtime/benchmark.js';
import { acceptanceExport, DATA_DIR, emit, log, REPO_ROOT, scratchDir, TRAINED_PEER } from './quantize-common.js';

const { values } = parseArgs({
  options: {
    fp32: { type: 'string' },
    peer: { type: 'string', default: TRAINED_PEER },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '100' },
    samples: { type: 'string', default: '512' },
    extra: { type: 'string', default: '' },
  },
});
const threads = Number(values.threads);
const dir = scratchDir();
const fp32 = values.fp32 ?? acceptanceExport(dir);

/** `slim quantize` in a child process; wall time includes Node start-up and loading the data. */
function slimQuantize(input: string, output: string, extra: string[]): { json: Record<string, unknown>; wallSeconds: number } {
  const args = ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), 'quantize', input, '-o', output, '--calib', 'cifar10', '--data-dir', DATA_DIR, '--samples', values.samples!, '--threads', String(threads), '--json', ...extra];
  log(`slim ${args.slice(3).join(' ')}`);
  const t0 = performance.now();
  const out = execFileSync(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 }).toString();
  return { json: JSON.parse(out) as Record<string, unknown>, wallSeconds: (performance.now() - t0) / 1000 };
}

const extra = values.extra ? values.extra.split(' ') : [];
const int8 = path.join(dir, 'int8.onnx');
const q = slimQuantize(fp32, int8, extra);
const sizeRatio = statSync(int8).size / statSync(fp32).size;

// Fusion: what ORT runs, and any op that still computes in float.
const kernels = await ortKernels(int8, { threads });
const floatOps = Object.entries(kernels.floatOps);

// Latency: alternate fp32 / int8 each round.
const rounds = Number(values.rounds);
const p50: { fp32: number[]; int8: number[] } = { fp32: [], int8: [] };
for (let r = 0; r < rounds; r++) {
  for (const [name, file] of [['fp32', fp32], ['int8', int8]] as const) {
    const b = await benchmark(file, { threads, batch: 1, runs: Number(values.runs), warmupRuns: 10, throughputBatch: 0 });
    p50[name].push(b.latencyMs.p50);
  }
  log(`round ${r + 1}: fp32 p50 ${p50.fp32[r]!.toFixed(2)} ms, int8 p50 ${p50.int8[r]!.toFixed(2)} ms, ratio ${(p50.int8[r]! / p50.fp32[r]!).toFixed(3)}`);
}
const ratios = p50.int8.map((v, i) => v / p50.fp32[i]!).sort((a, b) => a - b);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const latencyRatio = median(ratios);

const result: Record<string, unknown> = {
  bench: 'quantize-acceptance',
  fp32: values.fp32 ?? 'random-weight ResNet18-CIFAR export (scripts/make-torch-fixtures.py --resnet18-cifar)',
  threads,
  size_bytes_fp32: statSync(fp32).size,
  size_bytes_int8: statSync(int8).size,
  size_ratio: sizeRatio,
  quantize_seconds: q.json['seconds'],
  calibration_seconds: q.json['calibration_seconds'],
  quantize_wall_seconds_with_node_startup: q.wallSeconds,
  latency_p50_ms: { fp32: median(p50.fp32), int8: median(p50.int8) },
  latency_ratio_median: latencyRatio,
  latency_ratio_per_round: ratios,
  ort_optimized_ops: kernels.ops,
  float_compute_ops_left: Object.fromEntries(floatOps),
  pass: { size: sizeRatio <= 0.26, latency: latencyRatio <= 0.35, time: q.wallSeconds <= 60, fused: floatOps.length === 0 },
};

if (values.peer && existsSync(values.peer)) {
  const peerInt8 = path.join(dir, 'peer.int8.onnx');
  const p = slimQuantize(values.peer, peerInt8, ['--eval', 'cifar10', ...extra]);
  result['peer'] = {
    model: values.peer,
    top1_before: p.json['top1_before'],
    top1_after: p.json['top1_after'],
    drop_pt: p.json['top1_drop_pt'],
    eval_images: p.json['eval_images'],
    size_ratio: p.json['size_ratio'],
    seconds: p.json['seconds'],
  };
  (result['pass'] as Record<string, boolean>)['accuracy_peer'] = (p.json['top1_drop_pt'] as number) <= 0.05;
} else {
  result['peer'] = `not measured: ${values.peer} does not exist`;
}
emit(result);
