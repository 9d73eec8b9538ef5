/**
 * Calibrators against hand-computed histograms and thresholds, the MSE search against a brute-force
 * search on the raw values, collection through ONNX Runtime against the values ORT returns, and the
 * collector's memory on a 5,000-image stream.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCifar10 } from '../src/data/cifar10.js';
import { take } from '../src/data/subsets.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { emptyGraph, type Graph } from '../src/onnx/graph.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32 } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import {
  ActivationCollector,
  entropyRange,
  klThreshold,
  minMaxRange,
  mseRange,
  percentileRange,
  runCalibration,
  TensorHistogram,
} from '../src/compress/quantize/calibrate/index.js';
import { imageFeeds } from '../src/compress/quantize/feeds.js';
import { computeScaleZeroPoint, fakeQuantize, qRange } from '../src/compress/quantize/math.js';
import { INT8_SYMMETRIC, UINT8_ASYMMETRIC } from '../src/compress/quantize/types.js';
import { CIFAR_DIR } from './helpers/fixtures.js';

const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));

function histogramOf(values: number[], bins = 4096): TensorHistogram {
  const h = new TensorHistogram(bins);
  h.add(Float32Array.from(values));
  return h;
}

describe('TensorHistogram', () => {
  it('bins magnitudes per sign, counts zeros apart and keeps exact min / max (hand-computed)', () => {
    const h = histogramOf([0, 0.6, -1, 1.9, 2, 0], 4);
    // limit just above 2, width just above 0.5: 0.6 → bin 1, 1.9 → bin 3, 2 → bin 3; −1 → bin 1 (1 / 0.5000005 = 1.99…).
    expect(h.limit).toBeCloseTo(2, 5);
    expect(Array.from(h.positive)).toEqual([0, 1, 0, 2]);
    expect(Array.from(h.negative)).toEqual([0, 1, 0, 0]);
    expect([h.zeros, h.count, h.min, h.max]).toEqual([2, 6, -1, 2]);
  });

  it('grows by doubling and merging, giving exactly the histogram built with the final limit', () => {
    const rng = new Random(7);
    const batches = [1, 3, 0.5, 40, 2].map((spread) => Array.from({ length: 5000 }, () => rng.normal() * spread));
    const h = new TensorHistogram(256);
    for (const b of batches) h.add(Float32Array.from(b));
    const direct = { positive: new Float64Array(256), negative: new Float64Array(256) };
    const inverse = 256 / h.limit;
    for (const x of batches.flat().map(Math.fround)) {
      if (x === 0) continue;
      const k = Math.min(255, Math.floor(Math.abs(x) * inverse));
      (x > 0 ? direct.positive : direct.negative)[k]!++;
    }
    expect(Array.from(h.positive)).toEqual(Array.from(direct.positive));
    expect(Array.from(h.negative)).toEqual(Array.from(direct.negative));
    expect(h.count).toBe(25000);
  });

  it('keeps NaN and infinities out of the bins and makes calibration fail loudly on them', () => {
    const c = new ActivationCollector(['t'], 16);
    c.add({ t: float32([3], [1, NaN, Infinity]) });
    expect(c.histograms.get('t')!.nonFinite).toBe(2);
    expect(() => c.ranges({ method: 'minmax', percentile: 99, bins: 16 }, UINT8_ASYMMETRIC, qRange('uint8'))).toThrow(/'t'.*NaN or infinite/);
  });
});

describe('range methods', () => {
  const ramp = Array.from({ length: 1000 }, (_, i) => i + 1); // 1..1000

  it('minmax: the exact extremes', () => {
    expect(minMaxRange(histogramOf([-3, 2, 7.5]))).toEqual({ min: -3, max: 7.5 });
  });

  it('percentile: clips the top 1 % of a non-negative ramp (all the budget on the upper side)', () => {
    const r = percentileRange(histogramOf(ramp), 99, UINT8_ASYMMETRIC);
    expect(r.min).toBe(1);
    // 10 values (991..1000) may lie above the threshold: the bin edge just past 990.
    expect(r.max).toBeGreaterThanOrEqual(990);
    expect(r.max).toBeLessThan(991);
  });

  it('percentile: splits the budget between the two sides of a signed tensor, or clips |x| when symmetric', () => {
    const signed = [...ramp, ...ramp.map((v) => -v)];
    const r = percentileRange(histogramOf(signed), 99, UINT8_ASYMMETRIC);
    // 20 values may go: 10 per side.
    expect(r.max).toBeGreaterThanOrEqual(990);
    expect(r.max).toBeLessThan(991);
    expect(r.min).toBeLessThanOrEqual(-990);
    expect(r.min).toBeGreaterThan(-991);
    const skewed = [...ramp, -5];
    const s = percentileRange(histogramOf(skewed), 99, INT8_SYMMETRIC);
    expect(s.min).toBe(-5);
    expect(s.max).toBeGreaterThanOrEqual(989);
    expect(s.max).toBeLessThan(991);
  });

  it('entropy: keeps the whole range of a uniform tensor, clips rare outliers of a peaked one', () => {
    const rng = new Random(11);
    const uniform = Array.from({ length: 50000 }, () => rng.next());
    expect(entropyRange(histogramOf(uniform), UINT8_ASYMMETRIC).max).toBeGreaterThan(0.95);
    const peaked = Array.from({ length: 50000 }, () => Math.abs(rng.normal()));
    for (let i = 0; i < 5; i++) peaked.push(60);
    const r = entropyRange(histogramOf(peaked), UINT8_ASYMMETRIC);
    expect(r.min).toBe(Math.min(...peaked.map(Math.fround)));
    expect(r.max).toBeGreaterThan(2);
    expect(r.max).toBeLessThan(20);
  });

  it('entropy: a lone low value below a narrow mass (a sigmoid gate) does not collapse the range onto it', () => {
    const rng = new Random(12);
    const gate = Array.from({ length: 50000 }, () => 0.4 + 0.22 * rng.next());
    gate.push(0.3);
    const r = entropyRange(histogramOf(gate), UINT8_ASYMMETRIC);
    expect(r.min).toBeCloseTo(0.3, 5);
    expect(r.max).toBeGreaterThan(0.6);
  });

  it('klThreshold: no search when the data fits the levels, and the full range for a flat histogram', () => {
    const few = new Float64Array(1000);
    few.fill(1, 0, 100);
    expect(klThreshold(few, 128)).toBe(100);
    const flat = new Float64Array(1024).fill(5);
    expect(klThreshold(flat, 128)).toBe(1024);
  });

  /** Mean squared error of fake-quantizing `values` with range [lo, hi], on the raw values. */
  function actualMse(values: Float32Array, lo: number, hi: number): number {
    const r = qRange('uint8');
    const p = computeScaleZeroPoint(lo, hi, r, false);
    let e = 0;
    for (const x of values) e += (x - fakeQuantize(x, p.scale, p.zeroPoint, r)) ** 2;
    return e / values.length;
  }

  it('mse: the chosen range is as good as a brute-force search on the raw values (within 3 %)', () => {
    const rng = new Random(13);
    for (const [name, gen] of [
      ['half-normal', () => Math.abs(rng.normal())],
      ['laplace-ish', () => Math.abs(rng.normal() * rng.normal() * 2)],
    ] as const) {
      const values = Float32Array.from({ length: 40000 }, gen);
      const max = values.reduce((a, v) => Math.max(a, v), 0);
      const chosen = mseRange(histogramOf(Array.from(values)), UINT8_ASYMMETRIC, qRange('uint8'));
      let best = Infinity;
      for (let k = 1; k <= 400; k++) best = Math.min(best, actualMse(values, 0, (max * k) / 400));
      const ours = actualMse(values, chosen.min, chosen.max);
      expect(ours, name).toBeLessThanOrEqual(best * 1.03);
      expect(chosen.max, name).toBeLessThan(max); // it clips the tail
    }
  });

  it('mse: searches both sides of a signed tensor', () => {
    const rng = new Random(17);
    const values = Array.from({ length: 40000 }, () => rng.normal() * (rng.next() < 0.5 ? 1 : 3));
    const r = mseRange(histogramOf(values), UINT8_ASYMMETRIC, qRange('uint8'));
    expect(r.min).toBeLessThan(0);
    expect(r.max).toBeGreaterThan(0);
    const exact = minMaxRange(histogramOf(values));
    expect(actualMse(Float32Array.from(values), r.min, r.max)).toBeLessThan(actualMse(Float32Array.from(values), exact.min, exact.max));
  });

  it('every method gives a usable range for a saturated gate: a narrow band far from 0 (seen in a pruned EfficientNet)', () => {
    // Sigmoid outputs in [0.49949, 0.50043], most at the bottom: the whole band is one uint8 step of
    // [0, 0.5], so MSE's cheapest choice clips it all just below its minimum.
    const values = new Float32Array(4096);
    for (let i = 0; i < values.length; i++) values[i] = 0.49949 + (i % 100 === 0 ? 0.00094 : (i / values.length) * 1e-5);
    const c = new ActivationCollector(['gate'], 4096);
    c.add({ gate: float32([values.length], values) });
    for (const method of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const r = c.ranges({ method, percentile: 99.999, bins: 4096 }, UINT8_ASYMMETRIC, qRange('uint8')).get('gate')!;
      expect(r.min, method).toBeLessThanOrEqual(r.max);
      const { scale, zeroPoint } = computeScaleZeroPoint(r.min, r.max, qRange('uint8'), false);
      // The band quantizes to within one step of itself.
      for (const v of [values[0]!, values[100]!]) expect(Math.abs(fakeQuantize(v, scale, zeroPoint, qRange('uint8')) - v), method).toBeLessThan(scale);
    }
  });
});

/** x [N, 3, 8, 8] → Conv (4 channels) → Relu → y. */
function convRelu(): Graph {
  const rng = new Random(2);
  const g = emptyGraph('conv-relu', 17);
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 3, 8, 8] }];
  g.outputs = [{ name: 'y', dtype: 'float32', shape: ['N', 4, 8, 8] }];
  g.initializers.set('w', float32([4, 3, 3, 3], Array.from({ length: 108 }, () => rng.normal() * 0.3)));
  g.initializers.set('b', float32([4], [0.1, -0.2, 0.3, 0]));
  g.nodes = [
    { name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
    { name: 'relu', opType: 'Relu', domain: '', inputs: ['c'], outputs: ['y'], attributes: {} },
  ];
  return g;
}

describe('calibration through ONNX Runtime', () => {
  it('collects exactly what ORT computes for the tapped tensors (and the graph input)', async () => {
    const g = convRelu();
    const rng = new Random(4);
    const feeds = [0, 1, 2].map(() => ({ x: float32([5, 3, 8, 8], Array.from({ length: 5 * 192 }, () => rng.normal())) }));
    const collector = await runCalibration(g, inferShapes(g), feeds, { targets: ['x', 'c', 'y'], bins: 64, channelMeans: new Map([['c', 1]]), threads: 1 });
    expect(collector.samples).toBe(15);
    const all: Record<string, number[]> = { x: [], c: [], y: [] };
    const sums = new Float64Array(4);
    for (const feed of feeds) {
      const out = await runGraph({ ...g, outputs: [...g.outputs, { name: 'c', dtype: 'float32' }] }, feed, { threads: 1 });
      all['x']!.push(...(feed.x.data as Float32Array));
      const c = out['c']!.data as Float32Array;
      all['c']!.push(...c);
      all['y']!.push(...(out['y']!.data as Float32Array));
      for (let i = 0; i < c.length; i++) sums[Math.floor(i / 64) % 4]! += c[i]!;
    }
    for (const name of ['x', 'c', 'y']) {
      const h = collector.histograms.get(name)!;
      const values = all[name]!;
      expect(h.count).toBe(values.length);
      expect(h.min).toBe(Math.min(...values));
      expect(h.max).toBe(Math.max(...values));
      expect(h.zeros).toBe(values.filter((v) => v === 0).length);
    }
    const means = collector.channelMean('c')!;
    for (let ch = 0; ch < 4; ch++) expect(means[ch]).toBeCloseTo(sums[ch]! / (15 * 64), 5);
  });

  it.runIf(hasCifar)('streams 5,000 CIFAR-10 images with memory that does not grow with the count', async () => {
    const g = convRelu();
    const big: Graph = { ...g, inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 32, 32] }], outputs: [{ name: 'y', dtype: 'float32', shape: ['N', 4, 32, 32] }] };
    const set = take(await loadCifar10('train', { dataDir: CIFAR_DIR, limit: 5000 }), 5000);
    const facts = inferShapes(big);
    const run = async (images: number): Promise<{ bytes: number; rssGrowth: number; samples: number }> => {
      const before = process.memoryUsage().rss;
      let peak = before;
      const c = await runCalibration(big, facts, imageFeeds(take(set, images), { inputName: 'x', normalization: CIFAR10_NORMALIZATION, batchSize: 100 }), {
        targets: ['c', 'y'],
        bins: 2048,
        threads: 1,
        onProgress: () => (peak = Math.max(peak, process.memoryUsage().rss)),
      });
      return { bytes: c.bytes, rssGrowth: peak - before, samples: c.samples };
    };
    const small = await run(500);
    const large = await run(5000);
    expect(large.samples).toBe(5000);
    // Fixed-size statistics: 2 tensors × 2 signs × 2048 bins × 8 bytes, whatever the image count.
    expect(small.bytes).toBe(2 * 2 * 2048 * 8);
    expect(large.bytes).toBe(small.bytes);
    // Keeping every batch's outputs would take 5000 × 2 × 4 × 32 × 32 × 4 B = 164 MB.
    expect(large.rssGrowth).toBeLessThan(80 * 2 ** 20);
  });
});
