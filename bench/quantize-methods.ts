/**
 * Which calibration settings give the best int8 accuracy? One calibration run (the histograms serve
 * every method), then each variant built and evaluated on the CIFAR-10 test set: calibration method ×
 * bias correction, plus per-tensor weights, int8 symmetric activations and cross-layer equalization.
 * The evidence behind `slim quantize`'s defaults. One JSON line.
 *
 *   npx tsx bench/quantize-methods.ts [--model /work/models/r18w025-torch.onnx] [--samples 512] [--seeds 0]
 *        [--limit 10000] [--threads 2]
 *
 * --seeds 0,1,2 repeats everything with other calibration samples: differences between methods smaller
 * than the spread across seeds are noise. `flips` counts test images whose prediction differs from fp32.
 */
import { parseArgs } from 'node:util';
import type { ImageSet } from '../src/data/types.js';
import { normalizationFor } from '../src/data/model-data.js';
import { loadModel } from '../src/onnx/validate.js';
import {
  batchSizeFor,
  buildQuantized,
  calibratePlan,
  calibrationTargets,
  CALIBRATION_METHODS,
  DEFAULT_STATIC,
  imageFeeds,
  INT8_SYMMETRIC,
  planQuantization,
  prepareFloatGraph,
  sampleImages,
  tapBytesPerSample,
  type CalibrationMethod,
  type StaticOptions,
} from '../src/compress/quantize/index.js';
import { cifar, emit, evaluateGraph, log, TRAINED_PEER } from './quantize-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: TRAINED_PEER },
    samples: { type: 'string', default: '512' },
    seeds: { type: 'string', default: '0' },
    limit: { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
    methods: { type: 'string', default: CALIBRATION_METHODS.join(',') },
  },
});
const threads = Number(values.threads);
const { graph } = await loadModel(values.model!);
const test = await cifar('test', Number(values.limit));
const train = await cifar('train');
const normalization = normalizationFor(graph, {});
const fp32 = await evaluateGraph(graph, test, threads);
log(`fp32 top-1 ${(fp32.top1 * 100).toFixed(2)} %`);

interface Variant {
  name: string;
  options: StaticOptions;
}
const methods = values.methods!.split(',') as CalibrationMethod[];
const withMethod = (o: StaticOptions, method: CalibrationMethod): StaticOptions => ({ ...o, calibration: { ...o.calibration, method } });
const variants: Variant[] = [];
for (const method of methods) {
  variants.push({ name: method, options: withMethod(DEFAULT_STATIC, method) });
  variants.push({ name: `${method}+bias-correction`, options: { ...withMethod(DEFAULT_STATIC, method), biasCorrection: true } });
}
variants.push({ name: 'percentile 99.99', options: { ...DEFAULT_STATIC, calibration: { ...DEFAULT_STATIC.calibration, percentile: 99.99 } } });
variants.push({ name: 'percentile 99.9999', options: { ...DEFAULT_STATIC, calibration: { ...DEFAULT_STATIC.calibration, percentile: 99.9999 } } });
variants.push({ name: 'percentile, per-tensor weights', options: { ...DEFAULT_STATIC, perChannel: false } });
variants.push({ name: 'percentile, per-tensor weights, equalized', options: { ...DEFAULT_STATIC, perChannel: false, equalize: true } });
variants.push({ name: 'percentile, equalized', options: { ...DEFAULT_STATIC, equalize: true } });
variants.push({ name: 'percentile, int8 symmetric activations', options: { ...DEFAULT_STATIC, activations: INT8_SYMMETRIC } });

const flips = (p: Uint16Array): number => p.reduce((a, v, i) => a + (v !== fp32.predictions[i] ? 1 : 0), 0);

async function runSeed(seed: number): Promise<Record<string, { top1: number; flips: number }>> {
  const calibSet: ImageSet = sampleImages(train, Number(values.samples), seed);
  const out: Record<string, { top1: number; flips: number }> = {};
  // Equalization changes the float graph, so it gets its own calibration; the rest share one.
  for (const equalize of [false, true]) {
    const prepared = prepareFloatGraph(graph, { equalize });
    const plan = planQuantization(prepared.graph, prepared.facts, DEFAULT_STATIC);
    const feeds = imageFeeds(calibSet, { inputName: prepared.graph.inputs[0]!.name, normalization, batchSize: batchSizeFor(tapBytesPerSample(calibrationTargets(plan), prepared.facts)) });
    const t0 = performance.now();
    const collector = await calibratePlan(prepared, plan, feeds, DEFAULT_STATIC.calibration, { threads, channelMeans: true, anyActivationFormat: true });
    log(`seed ${seed}${equalize ? ' (equalized)' : ''}: calibrated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const v of variants.filter((x) => x.options.equalize === equalize)) {
      const { graph: q } = buildQuantized(prepared, collector, v.options);
      const r = await evaluateGraph(q, test, threads);
      out[v.name] = { top1: r.top1, flips: flips(r.predictions) };
      log(`  ${v.name}: top-1 ${(r.top1 * 100).toFixed(2)} % (${((r.top1 - fp32.top1) * 100).toFixed(2)} pt), ${out[v.name]!.flips} flips`);
    }
  }
  return out;
}

const seeds = values.seeds!.split(',').map(Number);
const perSeed: Record<string, Record<string, { top1: number; flips: number }>> = {};
for (const seed of seeds) perSeed[seed] = await runSeed(seed);
const summary = variants.map((v) => {
  const top1s = seeds.map((s) => perSeed[s]![v.name]!.top1);
  const mean = top1s.reduce((a, b) => a + b, 0) / top1s.length;
  return {
    variant: v.name,
    top1_mean: mean,
    delta_pt_mean: (mean - fp32.top1) * 100,
    delta_pt: top1s.map((t) => +((t - fp32.top1) * 100).toFixed(2)),
    flips_mean: seeds.map((s) => perSeed[s]![v.name]!.flips).reduce((a, b) => a + b, 0) / seeds.length,
  };
});
emit({ bench: 'quantize-methods', model: values.model, samples: Number(values.samples), seeds, images: test.labels.length, top1_fp32: fp32.top1, variants: summary });
