/**
 * Acceptance check for structured pruning: `--structured --target-macs R` on a ResNet18-CIFAR export
 * gives a valid model with ≥ 45 % fewer MACs and batch-1 latency ≤ 0.65× the original, measured in one
 * run. One line of JSON per invocation.
 *
 *   npx tsx bench/prune-latency.ts [--model M.onnx] [--target-macs 0.5] [--round-to 1,8,16] [--importance l2]
 *                                  [--scope layer] [--threads 2] [--runs 500]
 *
 * Without --model, a random-weight export of the acceptance shape is made with PyTorch (BN folded, Gemm
 * head). Each --round-to value is one variant. MACs are those of the written file, read back. Latency is
 * each model's p50 over its runs, the models timed in turns of 10 runs (ORT CPU, batch 1, as `slim bench`
 * times them), so load from other processes falls on every model alike.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compareLatency, pruneStructured, type ImportanceName, type Scope } from '../src/compress/prune/index.js';
import { encodeModel } from '../src/onnx/io.js';
import { loadModel } from '../src/onnx/validate.js';
import { emit, modelOrAcceptanceExport, scratchDir } from './prune-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'target-macs': { type: 'string', default: '0.5' },
    'round-to': { type: 'string', default: '1,8,16' },
    importance: { type: 'string', default: 'l2' },
    scope: { type: 'string', default: 'layer' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '500' },
  },
});
const dir = scratchDir();
const file = modelOrAcceptanceExport(values.model, dir);
const { graph, facts } = await loadModel(file);
const threads = Number(values.threads);
const target = Number(values['target-macs']);

const variants: { roundTo: number; file: string; macs: number; p: number; channels: number[]; seconds: number }[] = [];
for (const roundTo of values['round-to']!.split(',').map(Number)) {
  const start = performance.now();
  const r = await pruneStructured(graph, {
    target: { kind: 'macs', value: target },
    roundTo,
    importance: values.importance as ImportanceName,
    scope: values.scope as Scope,
  });
  const seconds = (performance.now() - start) / 1000;
  const out = path.join(dir, `pruned-r${roundTo}.onnx`);
  writeFileSync(out, encodeModel(r.graph).model);
  const written = await loadModel(out); // validates, and counts the MACs of the file as written
  variants.push({ roundTo, file: out, macs: written.facts.totalMacs, p: r.p, channels: r.groups.map((g) => g.channelsAfter), seconds });
  process.stderr.write(`round-to ${roundTo}: MACs ${(written.facts.totalMacs / facts.totalMacs).toFixed(3)} of the original, pruned in ${seconds.toFixed(1)} s\n`);
}

process.stderr.write(`timing ${variants.length + 1} models in turns, ${values.runs} runs each …\n`);
const { readFileSync } = await import('node:fs');
const latencies = await compareLatency([readFileSync(file), ...variants.map((v) => readFileSync(v.file))], {
  threads,
  runs: Number(values.runs),
});
const base = latencies[0]!;
emit({
  bench: 'prune-latency',
  model: values.model ?? 'random-weight ResNet18-CIFAR export (scripts/make-torch-fixtures.py --resnet18-cifar)',
  target_macs: target,
  importance: values.importance,
  scope: values.scope,
  threads,
  macs_before: facts.totalMacs,
  latency_ms_before: base,
  variants: variants.map((v, i) => ({
    round_to: v.roundTo,
    macs_after: v.macs,
    macs_reduction: 1 - v.macs / facts.totalMacs,
    latency_ms_after: latencies[i + 1],
    latency_ratio: latencies[i + 1]! / base,
    group_channels: v.channels,
    prune_seconds: v.seconds,
    pass: 1 - v.macs / facts.totalMacs >= 0.45 && latencies[i + 1]! / base <= 0.65,
  })),
});
