/**
 * Batch-1 latency of fp32 against slimkit's int8 and ONNX Runtime's Python quantizer's int8, measured the
 * way `slim bench` measures (src/runtime/benchmark.ts: a fresh session, 10 warm-up runs, p50 of the timed
 * runs), at 1 and 2 intra-op threads. The CPU is shared, so every round runs every model once per thread
 * count, in an order that rotates from round to round, and the report gives the median over rounds of
 * each p50 (and the ratios of those medians), with the load average before and after. One JSON line.
 *
 *   npx tsx bench/quantize-latency.ts [--model fp32.onnx] [--python /path/to/venv/bin/python] [--samples 512]
 *        [--rounds 7] [--runs 100] [--threads 1,2] [--no-spin] [--profile]
 *
 * Without --model, a random-weight ResNet18-CIFAR of the acceptance shape is exported by PyTorch
 * (scripts/make-torch-fixtures.py). slimkit quantizes it twice from one calibration: with this machine's
 * Conv weight layout (`cpu: 'auto'`, the default) and with the other one, so the effect of the layout is
 * measured too, and with the uint8 layout for x64 without VNNI (`cpu: 'avx2'`); on a CPU with AMX also as `slim quantize` writes it there (int8_tuned: each Conv on the kernel
 * ORT's profiler measured faster at that thread count, src/compress/quantize/tune-layout.ts). --python names an interpreter with the `onnxruntime` package; without one the ORT row is
 * left out. --profile adds, per model, ORT's per-node profile at 1 thread summed by op type (µs, median
 * over 200 runs).
 */
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { normalizationFor } from '../src/data/model-data.js';
import { writeModel } from '../src/onnx/io.js';
import { loadModel } from '../src/onnx/validate.js';
import { benchmark } from '../src/runtime/benchmark.js';
import { ortVersion } from '../src/runtime/ort.js';
import {
  batchSizeFor,
  buildQuantized,
  calibratePlan,
  calibrationTargets,
  DEFAULT_STATIC,
  imageFeeds,
  planQuantization,
  prepareFloatGraph,
  resolveCpu,
  tuneConvLayout,
  sampleImages,
  tapBytesPerSample,
  type Int8Cpu,
} from '../src/compress/quantize/index.js';
import { profileNodes } from '../src/runtime/profile.js';
import { acceptanceExport, cifar, emit, log, ortPythonQuantize, scratchDir } from './quantize-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    samples: { type: 'string', default: '512' },
    seed: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '7' },
    runs: { type: 'string', default: '100' },
    threads: { type: 'string', default: '1,2' },
    'no-spin': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const runs = Number(values.runs);
const threadCounts = values.threads!.split(',').map(Number);
const spinning = !values['no-spin'];
const dir = scratchDir();
const load = (): number[] => loadavg().map((v) => Math.round(v * 100) / 100);
const loadBefore = load();

// 1. The models.
const fp32File = values.model ?? acceptanceExport(dir);
const { graph } = await loadModel(fp32File);
const normalization = normalizationFor(graph, {});
const calibSet = sampleImages(await cifar('train'), Number(values.samples), Number(values.seed));
const prepared = prepareFloatGraph(graph, { equalize: false });
const plan = planQuantization(prepared.graph, prepared.facts, DEFAULT_STATIC);
const inputName = prepared.graph.inputs[0]!.name;
const feeds = imageFeeds(calibSet, { inputName, normalization, batchSize: batchSizeFor(tapBytesPerSample(calibrationTargets(plan), prepared.facts)) });
const collector = await calibratePlan(prepared, plan, feeds, DEFAULT_STATIC.calibration, { threads: 2 });
const host = resolveCpu('auto');
const other: Int8Cpu = host === 'amx' ? 'generic' : 'amx';
const models: Record<string, string> = { fp32: fp32File };
// And the uint8-weight layout for x64 without VNNI (--cpu avx2): what exactness costs where s8 sums saturate.
for (const [name, cpu] of [['int8', host], [`int8_${other}`, other], ['int8_avx2', 'avx2']] as const) {
  models[name] = path.join(dir, `slimkit-${cpu}.onnx`);
  await writeModel(buildQuantized(prepared, collector, { ...DEFAULT_STATIC, cpu }).graph, models[name]);
}
// What `slim quantize --threads N` writes on an AMX machine: each Conv on the kernel measured faster at N threads.
const tunedFor: Record<string, string> = {};
if (host === 'amx') {
  const amx = buildQuantized(prepared, collector, { ...DEFAULT_STATIC, cpu: 'amx' }).graph;
  for (const threads of threadCounts) {
    const tuned = await tuneConvLayout(amx, { threads });
    tunedFor[threads] = path.join(dir, `slimkit-tuned-${threads}.onnx`);
    await writeModel(tuned.graph, tunedFor[threads]);
    log(`tuned for ${threads} thread(s): ${tuned.amxConvs.length} of ${tuned.timings.length} Convs on AMX`);
  }
}
let ortNote: string | undefined;
try {
  models['ort_int8'] = ortPythonQuantize(values.python!, fp32File, calibSet, { inputName, normalization }, dir, 'minmax')['minmax']!.file;
} catch (e) {
  ortNote = `not run: ${(e as Error).message.split('\n')[0]}`;
  log(`ONNX Runtime quantizer ${ortNote}`);
}

// 2. Alternating rounds.
const names = [...Object.keys(models), ...(host === 'amx' ? ['int8_tuned'] : [])];
const fileOf = (name: string, threads: number): string => (name === 'int8_tuned' ? tunedFor[threads]! : models[name]!);
const p50s: Record<string, Record<string, number[]>> = {};
for (let round = 0; round < rounds; round++) {
  for (const threads of threadCounts) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + round) % names.length]!;
      const r = await benchmark(fileOf(name, threads), { threads, runs, warmupRuns: 10, throughputBatch: 0, spinning });
      ((p50s[threads] ??= {})[name] ??= []).push(r.latencyMs.p50);
    }
  }
  log(`round ${round + 1}/${rounds}: load ${load().join(' ')}`);
}
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const byThreads: Record<string, unknown> = {};
for (const threads of threadCounts) {
  const p50 = Object.fromEntries(names.map((n) => [n, median(p50s[threads]![n]!)]));
  const ratio = Object.fromEntries(names.filter((n) => n !== 'fp32').map((n) => [n, p50[n]! / p50['fp32']!]));
  byThreads[threads] = { p50_ms: p50, ratio_to_fp32: ratio, rounds_p50_ms: p50s[threads] };
}

// 3. Optional per-op profile at 1 thread.
const profiles: Record<string, unknown> = {};
if (values.profile) for (const name of names) profiles[name] = await profileByOp(fileOf(name, threadCounts[0]!));

emit({
  bench: 'quantize-latency',
  model: values.model ?? 'resnet18-cifar export (random weights, width 1)',
  cpu: cpus()[0]?.model,
  int8_cpu: host,
  ort: ortVersion().node,
  spinning,
  rounds,
  runs,
  threads: byThreads,
  ...(ortNote ? { ort_int8: ortNote } : {}),
  ...(values.profile ? { profile_1_thread_us: profiles } : {}),
  load_before: loadBefore,
  load_after: load(),
});

/** ORT's profiler over 200 runs at 1 thread: median µs per node, summed by op type, and the model run. */
async function profileByOp(file: string): Promise<Record<string, number>> {
  const { graph } = await loadModel(file);
  const p = await profileNodes(graph, { threads: 1, runs: 200, warmup: 50 });
  const byOp: Record<string, number> = { model_run: p.runUs };
  for (const { op, us } of p.nodes.values()) byOp[op] = (byOp[op] ?? 0) + us;
  return byOp;
}
