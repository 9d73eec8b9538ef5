import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { emptyGraph, type Dim, type Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { makeTensor } from '../src/onnx/tensor.js';
import { benchmark } from '../src/runtime/benchmark.js';
import { latencyStats, percentile } from '../src/runtime/percentiles.js';
import { benchmarkInChild } from '../src/runtime/benchmark-isolated.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full GC without starting Node with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function residentBytes(): number {
  return Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
}

/**
 * GC, then wait until RSS stops falling: V8 frees dead ArrayBuffers' memory on a background thread after
 * the GC, so on a busy machine it can still be leaving while the benchmark runs and hide ORT's growth
 * (VmHWM rose by 1.8 MB for a 33.5 MB Gemm in one CI run next to a training job).
 */
async function settleMemory(): Promise<void> {
  let last = Infinity;
  for (let quiet = 0, polls = 0; quiet < 3 && polls < 150; polls++) {
    collectGarbage();
    await new Promise((r) => setTimeout(r, 20));
    const now = residentBytes();
    quiet = now > last - 1e6 ? quiet + 1 : 0;
    last = Math.min(last, now);
  }
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TINY = path.join(REPO, 'test/fixtures/torch-tiny-resnet.onnx');
const quick = { threads: 1, warmupRuns: 2, runs: 50, throughputBatch: 4, throughputSeconds: 0.1 };

async function errorOf(p: Promise<unknown>): Promise<SlimError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(SlimError);
  return e as SlimError;
}

function relu(dims: Dim[]): Uint8Array {
  const graph: Graph = {
    ...emptyGraph('relu'),
    inputs: [{ name: 'x', dtype: 'float32', shape: dims }],
    outputs: [{ name: 'y', dtype: 'float32', shape: dims }],
    nodes: [{ name: 'relu', opType: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attributes: {} }],
  };
  return encodeModel(graph).model;
}

describe('nearest-rank percentiles', () => {
  it('pick the sample at rank ceil(p/100 · n)', () => {
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(ten, 50)).toBe(5);
    expect(percentile(ten, 90)).toBe(9);
    expect(percentile(ten, 91)).toBe(10);
    expect(percentile(ten, 99)).toBe(10);
    expect(percentile(ten, 0)).toBe(1);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(latencyStats(hundred)).toEqual({ p50: 50, p90: 90, p99: 99, mean: 50.5, min: 1, max: 100 });
    expect(() => percentile([], 50)).toThrow(RangeError);
  });
});

describe('benchmark', () => {
  it('times the PyTorch fixture: sorted positive samples, ordered percentiles, throughput, peak RSS', async () => {
    const phases = new Set<string>();
    const result = await benchmark(TINY, { ...quick, onProgress: (_done, _total, phase) => phases.add(phase) });
    expect(result.runs).toBe(50);
    expect(result.batch).toBe(1);
    expect(result.threads).toBe(1);
    expect(result.samplesMs).toHaveLength(50);
    expect(result.samplesMs.every((v) => v > 0)).toBe(true);
    expect(result.samplesMs).toEqual([...result.samplesMs].sort((a, b) => a - b));
    const { p50, p90, p99, min, max, mean } = result.latencyMs;
    expect(min).toBeLessThanOrEqual(p50);
    expect(p50).toBeLessThanOrEqual(p90);
    expect(p90).toBeLessThanOrEqual(p99);
    expect(p99).toBeLessThanOrEqual(max);
    expect(mean).toBeGreaterThanOrEqual(min);
    expect(mean).toBeLessThanOrEqual(max);
    // Nearest rank on 50 samples: p50 = 25th, p90 = 45th, p99 = 50th.
    expect([p50, p90, p99]).toEqual([result.samplesMs[24], result.samplesMs[44], result.samplesMs[49]]);
    expect(result.throughputBatch).toBe(4);
    expect(result.throughputRuns).toBeGreaterThanOrEqual(3);
    expect(result.throughputIps).toBeGreaterThan(0);
    expect([...phases].sort()).toEqual(['latency', 'throughput', 'warmup']);
    expect(result.peakRssSource).toBe('vmhwm'); // Linux
    expect(result.baselineRssBytes).toBeGreaterThan(10e6);
    expect(result.peakRssBytes).toBeGreaterThanOrEqual(result.baselineRssBytes);
  });

  it('peak RSS covers the weights ORT holds: a 32 MB Gemm raises it by more than 32 MB', async () => {
    const n = 2896; // 2896² floats ≈ 33.5 MB
    const graph: Graph = {
      ...emptyGraph('big-gemm'),
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', n] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', n] }],
      nodes: [{ name: 'gemm', opType: 'Gemm', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }],
      initializers: new Map([['w', makeTensor('float32', [n, n], new Float32Array(n * n).fill(0.001))]]),
    };
    const bytes = encodeModel(graph).model;
    // Collect the encoder's garbage first: freed during the run, it would hide ORT's growth from VmHWM.
    await settleMemory();
    const result = await benchmark(bytes, { ...quick, throughputBatch: 0 });
    expect(result.peakRssSource).toBe('vmhwm');
    expect(result.peakRssBytes - result.baselineRssBytes).toBeGreaterThan(32e6);
    expect(result.throughputIps).toBe(0);
    expect(result.throughputRuns).toBe(0);
  });

  it('a fixed batch is used as it is; asking for another is a usage error', async () => {
    const fixed = relu([4, 3, 8, 8]);
    const result = await benchmark(fixed, { ...quick, throughputBatch: undefined });
    expect(result.batch).toBe(4);
    expect(result.throughputBatch).toBe(4);
    const e = await errorOf(benchmark(fixed, { ...quick, batch: 2 }));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('fixed batch of 4');
  });

  it('symbolic dims other than the batch need a shape', async () => {
    const free = relu(['N', 3, 'H', 'W']);
    const e = await errorOf(benchmark(free, { ...quick, label: 'free.onnx' }));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain("free.onnx: input 'x' has shape [N, 3, H, W]");
    const result = await benchmark(free, { ...quick, batch: 2, inputShapes: { x: [1, 3, 8, 8] } });
    expect(result.batch).toBe(2);
    expect(result.samplesMs).toHaveLength(50);
  });

  it('fewer than 50 runs is a usage error', async () => {
    const e = await errorOf(benchmark(TINY, { ...quick, runs: 20 }));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('runs must be a whole number ≥ 50');
  });
});

describe('benchmarkInChild', () => {
  it('measures in a process of its own: 200 MB held here are not in its peak RSS', async () => {
    const ballast = new Uint8Array(200e6).fill(1); // resident in this process
    const here = residentBytes();
    const phases = new Set<string>();
    const result = await benchmarkInChild(TINY, { ...quick, onProgress: (_d, _t, phase) => phases.add(phase) });
    expect(ballast[ballast.length - 1]).toBe(1);
    expect(here).toBeGreaterThan(200e6);
    expect(result.peakRssBytes).toBeLessThan(here - 150e6);
    expect(result.peakRssBytes).toBeGreaterThan(10e6);
    expect(result.samplesMs).toHaveLength(50);
    expect(result.latencyMs.p50).toBeGreaterThan(0);
    expect([...phases].sort()).toEqual(['latency', 'throughput', 'warmup']);
  });

  it("keeps a SlimError's kind and message across the process boundary", async () => {
    const usage = await errorOf(benchmarkInChild(TINY, { ...quick, runs: 20 }));
    expect(usage.kind).toBe('usage');
    expect(usage.message).toContain('runs must be a whole number ≥ 50');
    const missing = await errorOf(benchmarkInChild(path.join(REPO, 'no-such-model.onnx'), quick));
    expect(missing.kind).toBe('input');
    expect(missing.message).toContain('no-such-model.onnx: file not found');
  });
});
