/**
 * Mean activation per channel of the values that Conv / Gemm layers read, over a few calibration
 * images run through ONNX Runtime: what a removed channel is replaced by (apply.ts, RemoveOptions.means).
 */
import { batches } from '../../data/batches.js';
import type { ImageSet, Normalization } from '../../data/types.js';
import { cloneGraph, dataInputs, type Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { makeTensor } from '../../onnx/tensor.js';
import { openSession } from '../../runtime/ort.js';
import type { DependencyGraph } from './dependency-graph.js';
import { portValue } from './node.js';

export interface Calibration {
  images: ImageSet;
  normalization: Normalization;
  /** Images to average over; default 256. */
  samples?: number;
  /** Seed of the image sample; default 0. */
  seed?: number;
  threads?: number;
}

/** The values whose channels Conv / Gemm read (in-ports of ops with independent outputs) in some group. */
export function readValues(dep: DependencyGraph): string[] {
  const values = new Set<string>();
  for (const d of dep.nodes) {
    if (d.ports?.coupling !== 'independent' || !d.rule?.compensate) continue;
    for (const slot of d.ports.inputs) {
      const v = portValue(d, 'in', slot);
      if (v && dep.groups.some((g) => g.members.has(v))) values.add(v);
    }
  }
  return [...values];
}

/** Per value, the mean over images and positions of each channel (axis 1). */
export async function channelMeans(graph: Graph, values: readonly string[], c: Calibration): Promise<Map<string, Float64Array>> {
  const input = dataInputs(graph)[0];
  if (!input || values.length === 0) return new Map();
  const g = cloneGraph(graph);
  g.outputs = values.map((name) => ({ name, dtype: 'float32' as const }));
  const session = await openSession(encodeModel(g).model, { label: 'calibration for pruning', ...(c.threads !== undefined ? { threads: c.threads } : {}) });
  const sums = new Map<string, Float64Array>();
  const counts = new Map<string, number>();
  try {
    for (const b of batches(c.images, { batchSize: 32, normalization: c.normalization, shuffleSeed: c.seed ?? 0, limit: c.samples ?? 256 })) {
      const out = await session.run({ [input.name]: makeTensor('float32', b.dims, b.images) });
      for (const name of values) {
        const t = out[name]!;
        const [n, ch] = [t.dims[0]!, t.dims[1]!];
        const inner = t.data.length / (n * ch);
        const sum = sums.get(name) ?? new Float64Array(ch);
        const data = t.data as Float32Array;
        for (let i = 0; i < data.length; i++) sum[Math.floor(i / inner) % ch]! += data[i]!;
        sums.set(name, sum);
        counts.set(name, (counts.get(name) ?? 0) + n * inner);
      }
    }
  } finally {
    await session.close();
  }
  return new Map([...sums].map(([name, sum]) => [name, sum.map((v) => v / counts.get(name)!)]));
}
