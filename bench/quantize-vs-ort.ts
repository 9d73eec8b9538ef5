/**
 * slimkit's int8 against ONNX Runtime's Python quantizer (static QDQ, per-channel U8S8) on the same model
 * and the same calibration images, evaluated the same way (onnxruntime-node, CIFAR-10 test set): top-1,
 * images whose prediction differs from fp32, file size, quantization time. One JSON line.
 *
 *   npx tsx bench/quantize-vs-ort.ts [--model /work/models/r18w025-torch.onnx] [--python python3] [--samples 512]
 *        [--seed 0] [--limit 10000] [--threads 2] [--ort-methods minmax,percentile,entropy]
 *
 * --python names an interpreter with the `onnxruntime` package (e.g. a venv: pip install onnxruntime); without
 * one only slimkit's rows are reported.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { normalizationFor } from '../src/data/model-data.js';
import { readModel } from '../src/onnx/io.js';
import { loadModel } from '../src/onnx/validate.js';
import { writeModel } from '../src/onnx/io.js';
import {
  batchSizeFor,
  buildQuantized,
  calibratePlan,
  calibrationTargets,
  CALIBRATION_METHODS,
  DEFAULT_STATIC,
  heldOutImages,
  imageFeeds,
  planQuantization,
  prepareFloatGraph,
  sampleImages,
  selectCalibrationMethod,
  tapBytesPerSample,
} from '../src/compress/quantize/index.js';
import { cifar, emit, evaluateGraph, log, ortPythonQuantize, scratchDir, TRAINED_PEER } from './quantize-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: TRAINED_PEER },
    python: { type: 'string', default: 'python3' },
    samples: { type: 'string', default: '512' },
    seed: { type: 'string', default: '0' },
    limit: { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
    'ort-methods': { type: 'string', default: 'minmax,percentile,entropy' },
    'held-out': { type: 'string', default: '512' },
  },
});
const threads = Number(values.threads);
const dir = scratchDir();
const { graph } = await loadModel(values.model!);
const normalization = normalizationFor(graph, {});
const test = await cifar('test', Number(values.limit));
const calibSet = sampleImages(await cifar('train'), Number(values.samples), Number(values.seed));
const fp32 = await evaluateGraph(graph, test, threads);
log(`fp32 top-1 ${(fp32.top1 * 100).toFixed(2)} %`);
const rows: Record<string, unknown>[] = [];
const row = async (name: string, file: string, seconds: number): Promise<void> => {
  const r = await evaluateGraph(await readModel(file), test, threads);
  const flips = r.predictions.reduce((a, v, i) => a + (v !== fp32.predictions[i] ? 1 : 0), 0);
  rows.push({ quantizer: name, top1: r.top1, delta_pt: (r.top1 - fp32.top1) * 100, flips, size_bytes: statSync(file).size, seconds });
  log(`${name}: top-1 ${(r.top1 * 100).toFixed(2)} % (${((r.top1 - fp32.top1) * 100).toFixed(2)} pt), ${flips} flips, ${seconds.toFixed(1)} s`);
};

// slimkit: one calibration, every method.
const t0 = performance.now();
const prepared = prepareFloatGraph(graph, { equalize: false });
const plan = planQuantization(prepared.graph, prepared.facts, DEFAULT_STATIC);
const inputName = prepared.graph.inputs[0]!.name;
const feeds = imageFeeds(calibSet, { inputName, normalization, batchSize: batchSizeFor(tapBytesPerSample(calibrationTargets(plan), prepared.facts)) });
const collector = await calibratePlan(prepared, plan, feeds, DEFAULT_STATIC.calibration, { threads });
const calibSeconds = (performance.now() - t0) / 1000;
for (const method of CALIBRATION_METHODS) {
  const t1 = performance.now();
  const q = buildQuantized(prepared, collector, { ...DEFAULT_STATIC, calibration: { ...DEFAULT_STATIC.calibration, method } });
  const file = path.join(dir, `slimkit-${method}.onnx`);
  await writeModel(q.graph, file);
  await row(`slimkit ${method}`, file, calibSeconds + (performance.now() - t1) / 1000);
}
// What `--method auto` would keep: output SQNR of each method on held-out training images.
const heldOut = heldOutImages(await cifar('train'), Number(values.samples), Number(values['held-out']), Number(values.seed));
const choice = await selectCalibrationMethod(prepared, collector, DEFAULT_STATIC, imageFeeds(heldOut, { inputName, normalization, batchSize: 64 }), { threads });
log(`auto: ${choice.method} (${choice.scores.map((s) => `${s.method} ${s.outputSqnrDb.toFixed(2)} dB`).join(', ')})`);

// ONNX Runtime's Python quantizer on the very same images.
let ort: Record<string, { file: string; seconds: number }> | string;
try {
  ort = ortPythonQuantize(values.python!, values.model!, calibSet, { inputName, normalization }, dir, values['ort-methods']!);
  for (const [method, r] of Object.entries(ort)) await row(`onnxruntime ${method}`, r.file, r.seconds);
} catch (e) {
  ort = `not run: ${(e as Error).message.split('\n')[0]}`;
  log(ort);
}
emit({ bench: 'quantize-vs-ort', model: values.model, samples: calibSet.labels.length, seed: Number(values.seed), images: test.labels.length, top1_fp32: fp32.top1, auto: { method: choice.method, held_out: heldOut.labels.length, output_sqnr_db: Object.fromEntries(choice.scores.map((s) => [s.method, Number(s.outputSqnrDb.toFixed(3))])) }, size_bytes_fp32: statSync(values.model!).size, rows, ...(typeof ort === 'string' ? { ort } : {}) });
