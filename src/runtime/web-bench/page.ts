/// <reference lib="dom" />
/**
 * The page `slim bench --target web` opens in a headless browser: onnxruntime-web (WebAssembly, SIMD,
 * threads when the page is cross-origin isolated) runs the model on seeded random inputs — the same
 * tensors `randomTensor` makes in Node — and times it with performance.now(). Bundled by esbuild at
 * bench time; the Node side (benchmark-web.ts) serves it and calls `window.slimBench`'s methods.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { float16BitsToNumber } from '../../onnx/tensor.js';
import { Random } from '../../util/random.js';
import { randomTensor, type BenchmarkInput } from '../random-input.js';

export interface WebOpenRequest {
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
  seed: number;
}

export interface WebOpenReply {
  /** Threads onnxruntime-web runs with (1 unless the page is cross-origin isolated). */
  threads: number;
  crossOriginIsolated: boolean;
  userAgent: string;
  /** The first output of the first latency run (at most OUTPUT_VALUES values), to check against Node. */
  firstOutput: { name: string; dims: number[]; values: number[] };
}

/**
 * What the page does for the Node side, one call at a time: it holds one model, as the web bundle's
 * page does, and times it in pieces so that several pages can take turns (benchmark-turns.ts).
 */
export interface WebBenchPage {
  open(request: WebOpenRequest): Promise<WebOpenReply>;
  warmup(runs: number): Promise<void>;
  /** Latency runs, each timed, in ms (run order); `rewarm`: one untimed run first. */
  timeRuns(runs: number, rewarm: boolean): Promise<number[]>;
  /** Throughput-batch runs until `seconds` have passed (at least one). */
  timeThroughput(seconds: number, rewarm: boolean): Promise<{ runs: number; seconds: number }>;
  release(): Promise<void>;
}

const OUTPUT_VALUES = 4096;

declare global {
  interface Window {
    slimBench?: WebBenchPage;
  }
}

/** The first OUTPUT_VALUES values as numbers (float16 may come as raw bits or, in newer browsers, as Float16Array). */
function outputValues(out: OrtWeb.Tensor): number[] {
  const head = (out.data as Uint16Array).slice(0, OUTPUT_VALUES);
  if (out.type === 'float16' && head instanceof Uint16Array) return Array.from(head, float16BitsToNumber);
  return Array.from(head as ArrayLike<number | bigint>, Number);
}

interface OpenModel {
  session: OrtWeb.InferenceSession;
  latencyFeeds: Record<string, OrtWeb.Tensor>;
  throughputFeeds: Record<string, OrtWeb.Tensor> | undefined;
  /** The first run at a new shape allocates: it is never timed. */
  throughputPrimed: boolean;
}

let model: OpenModel | undefined;

function opened(): OpenModel {
  if (!model) throw new Error('no model is open in the benchmark page');
  return model;
}

async function open(request: WebOpenRequest): Promise<WebOpenReply> {
  if (model) throw new Error('the benchmark page already holds a model');
  const ort = (await import(/* @vite-ignore */ request.ortModuleUrl)) as typeof OrtWeb;
  ort.env.wasm.wasmPaths = { wasm: request.ortWasmUrl };
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin-isolated pages.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? request.threads : 1;
  const bytes = await fetch(request.modelUrl);
  if (!bytes.ok) throw new Error(`cannot load the model (HTTP ${bytes.status})`);
  const session = await ort.InferenceSession.create(new Uint8Array(await bytes.arrayBuffer()), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    ...(request.externalData.length ? { externalData: request.externalData.map((e) => ({ path: e.path, data: e.url })) } : {}),
  });
  const random = new Random(request.seed);
  const feedsOf = (inputs: BenchmarkInput[]): Record<string, OrtWeb.Tensor> =>
    Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor(i.dtype as OrtWeb.Tensor.Type, randomTensor(i.dtype, i.dims, random).data as OrtWeb.Tensor.DataType, i.dims)]));
  const latencyFeeds = feedsOf(request.latencyInputs);
  const throughputFeeds = request.throughputInputs.length > 0 ? feedsOf(request.throughputInputs) : undefined;
  model = { session, latencyFeeds, throughputFeeds, throughputPrimed: false };
  const first = await session.run(latencyFeeds);
  const name = session.outputNames[0]!;
  const out = first[name]!;
  return {
    threads: ort.env.wasm.numThreads ?? 1,
    crossOriginIsolated: self.crossOriginIsolated,
    userAgent: navigator.userAgent,
    firstOutput: { name, dims: [...out.dims], values: outputValues(out) },
  };
}

window.slimBench = {
  open,
  async warmup(runs) {
    const { session, latencyFeeds } = opened();
    for (let i = 0; i < runs; i++) await session.run(latencyFeeds);
  },
  async timeRuns(runs, rewarm) {
    const { session, latencyFeeds } = opened();
    if (rewarm) await session.run(latencyFeeds);
    const samplesMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await session.run(latencyFeeds);
      samplesMs.push(performance.now() - t0);
    }
    return samplesMs;
  },
  async timeThroughput(seconds, rewarm) {
    const m = opened();
    if (!m.throughputFeeds) throw new Error('timeThroughput on a model opened without throughput inputs');
    if (rewarm || !m.throughputPrimed) await m.session.run(m.throughputFeeds);
    m.throughputPrimed = true;
    const t0 = performance.now();
    let runs = 0;
    let elapsed = 0;
    while (runs < 1 || elapsed < seconds * 1000) {
      await m.session.run(m.throughputFeeds);
      runs++;
      elapsed = performance.now() - t0;
    }
    return { runs, seconds: elapsed / 1000 };
  },
  async release() {
    const m = model;
    model = undefined;
    await m?.session.release();
  },
};
