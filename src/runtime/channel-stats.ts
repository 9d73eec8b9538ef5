/**
 * Per-channel statistics of intermediate values over a few images run through ONNX Runtime: the values
 * are exposed as graph outputs and accumulated batch by batch (memory: one batch of them).
 */
import { batches } from '../data/batches.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { cloneGraph, dataInputs, type Graph } from '../onnx/graph.js';
import { encodeModel } from '../onnx/io.js';
import { makeTensor, toNumbers } from '../onnx/tensor.js';
import { inferShapes } from '../onnx/shape-inference.js';
import type { ChannelMoments } from '../passes/index.js';
import { openSession } from './ort.js';

export interface ChannelStatsOptions {
  images: ImageSet;
  normalization: Normalization;
  /** Images to average over; default 256. */
  samples?: number;
  /** Seed of the image sample; default 0. */
  seed?: number;
  threads?: number;
}

/** Per value, the mean and (population) variance over images and positions of each channel (axis 1). */
export async function channelMoments(graph: Graph, values: readonly string[], c: ChannelStatsOptions): Promise<Map<string, ChannelMoments>> {
  const input = dataInputs(graph)[0];
  if (!input || values.length === 0) return new Map();
  const g = cloneGraph(graph);
  // Exposed in their own dtype (a float16 model's are float16: ORT refuses a float32 output for them).
  const types = inferShapes(graph).types;
  g.outputs = values.map((name) => ({ name, dtype: types.get(name)?.dtype ?? 'float32' }));
  // Without the NCHWc layout transforms ('all'): onnxruntime-node 1.30 crashed (SIGSEGV) on a pruned
  // ResNet18 asked for one Conv's output (60 channels, before a residual Add); they only change speed.
  const session = await openSession(encodeModel(g).model, { label: 'channel statistics', optimization: 'extended', ...(c.threads !== undefined ? { threads: c.threads } : {}) });
  const sums = new Map<string, { sum: Float64Array; squares: Float64Array; count: number }>();
  try {
    for (const b of batches(c.images, { batchSize: 32, normalization: c.normalization, shuffleSeed: c.seed ?? 0, limit: c.samples ?? 256 })) {
      const out = await session.run({ [input.name]: makeTensor('float32', b.dims, b.images) });
      for (const name of values) {
        const t = out[name]!;
        const [n, ch] = [t.dims[0]!, t.dims[1]!];
        const inner = t.data.length / (n * ch);
        const acc = sums.get(name) ?? { sum: new Float64Array(ch), squares: new Float64Array(ch), count: 0 };
        const data = t.dtype === 'float32' ? (t.data as Float32Array) : Float64Array.from(toNumbers(t));
        for (let i = 0; i < data.length; i++) {
          const k = Math.floor(i / inner) % ch;
          acc.sum[k]! += data[i]!;
          acc.squares[k]! += data[i]! * data[i]!;
        }
        acc.count += n * inner;
        sums.set(name, acc);
      }
    }
  } finally {
    await session.close();
  }
  return new Map(
    [...sums].map(([name, { sum, squares, count }]) => {
      const mean = sum.map((v) => v / count);
      return [name, { mean, variance: squares.map((v, k) => Math.max(0, v / count - mean[k]! ** 2)) }];
    }),
  );
}
