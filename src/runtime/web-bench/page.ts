/// <reference lib="dom" />
/**
 * The page `slim bench --target web` opens in a headless browser: onnxruntime-web (WebAssembly, SIMD,
 * threads when the page is cross-origin isolated) runs the model on seeded random inputs — the same
 * tensors `randomTensor` makes in Node — and times it with performance.now(). Bundled by esbuild at
 * bench time; the Node side (benchmark-web.ts) serves it and calls `window.slimBench`.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { float16BitsToNumber } from '../../onnx/tensor.js';
import { Random } from '../../util/random.js';
import { randomTensor, type BenchmarkInput } from '../random-input.js';

export interface WebBenchRequest {
  /** Same-origin URLs of the model and of onnxruntime-web's files. */
  modelUrl: string;
  ortModuleUrl: string;
  ortWasmUrl: string;
  /** External data files the model names, and where the page fetches each. */
  externalData: { path: string; url: string }[];
  latencyInputs: BenchmarkInput[];
  /** Empty: no throughput phase. */
  throughputInputs: BenchmarkInput[];
  threads: number;
  warmupRuns: number;
  runs: number;
  throughputSeconds: number;
  seed: number;
}

export interface WebBenchReply {
  /** Every timed latency run in ms, in run order. */
  samplesMs: number[];
  throughputRuns: number;
  throughputMs: number;
  /** Threads onnxruntime-web ran with (1 unless the page is cross-origin isolated). */
  threads: number;
  crossOriginIsolated: boolean;
  userAgent: string;
  /** The first output of the first latency run (at most OUTPUT_VALUES values), to check against Node. */
  firstOutput: { name: string; dims: number[]; values: number[] };
}

const OUTPUT_VALUES = 4096;

declare global {
  interface Window {
    slimBench?: (request: WebBenchRequest) => Promise<WebBenchReply>;
    /** Exposed by the Node side: progress of the current phase. */
    slimProgress?: (done: number, total: number, phase: 'warmup' | 'latency' | 'throughput') => Promise<void>;
  }
}

/** Progress at most every 100 ms: each call is a round trip to Node. */
function progressReporter(): (done: number, total: number, phase: 'warmup' | 'latency' | 'throughput') => void {
  let last = 0;
  return (done, total, phase) => {
    const now = performance.now();
    if (now - last < 100 && done < total) return;
    last = now;
    void window.slimProgress?.(done, total, phase);
  };
}

/** The first OUTPUT_VALUES values as numbers (float16 may come as raw bits or, in newer browsers, as Float16Array). */
function outputValues(out: OrtWeb.Tensor): number[] {
  const head = (out.data as Uint16Array).slice(0, OUTPUT_VALUES);
  if (out.type === 'float16' && head instanceof Uint16Array) return Array.from(head, float16BitsToNumber);
  return Array.from(head as ArrayLike<number | bigint>, Number);
}

async function slimBench(request: WebBenchRequest): Promise<WebBenchReply> {
  const ort = (await import(/* @vite-ignore */ request.ortModuleUrl)) as typeof OrtWeb;
  ort.env.wasm.wasmPaths = { wasm: request.ortWasmUrl };
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin-isolated pages.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? request.threads : 1;
  const model = await fetch(request.modelUrl);
  if (!model.ok) throw new Error(`cannot load the model (HTTP ${model.status})`);
  const session = await ort.InferenceSession.create(new Uint8Array(await model.arrayBuffer()), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    ...(request.externalData.length ? { externalData: request.externalData.map((e) => ({ path: e.path, data: e.url })) } : {}),
  });
  try {
    const random = new Random(request.seed);
    const feedsOf = (inputs: BenchmarkInput[]): Record<string, OrtWeb.Tensor> =>
      Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor(i.dtype as OrtWeb.Tensor.Type, randomTensor(i.dtype, i.dims, random).data as OrtWeb.Tensor.DataType, i.dims)]));
    const report = progressReporter();
    const latencyFeeds = feedsOf(request.latencyInputs);
    const first = await session.run(latencyFeeds);
    const name = session.outputNames[0]!;
    const out = first[name]!;
    const firstOutput = { name, dims: [...out.dims], values: outputValues(out) };
    for (let i = 0; i < request.warmupRuns; i++) {
      await session.run(latencyFeeds);
      report(i + 1, request.warmupRuns, 'warmup');
    }
    const samplesMs: number[] = [];
    for (let i = 0; i < request.runs; i++) {
      const t0 = performance.now();
      await session.run(latencyFeeds);
      samplesMs.push(performance.now() - t0);
      report(i + 1, request.runs, 'latency');
    }
    let throughputRuns = 0;
    let throughputMs = 0;
    if (request.throughputInputs.length > 0) {
      const feeds = feedsOf(request.throughputInputs);
      await session.run(feeds); // the first run at a new shape allocates
      const targetMs = request.throughputSeconds * 1000;
      const t0 = performance.now();
      while (throughputRuns < 3 || throughputMs < targetMs) {
        await session.run(feeds);
        throughputRuns++;
        throughputMs = performance.now() - t0;
        report(throughputMs, targetMs, 'throughput');
      }
    }
    return {
      samplesMs,
      throughputRuns,
      throughputMs,
      threads: ort.env.wasm.numThreads ?? 1,
      crossOriginIsolated: self.crossOriginIsolated,
      userAgent: navigator.userAgent,
      firstOutput,
    };
  } finally {
    await session.release();
  }
}

window.slimBench = slimBench;
