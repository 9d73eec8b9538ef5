/**
 * Calibration, one lifecycle for every method (STYLE.md §3): add taps → stream batches → compute →
 * typed ranges. The collector keeps only fixed-size statistics per tensor (TensorHistogram and, for bias
 * correction, per-channel sums), so memory does not grow with the number of calibration images, and
 * the four methods are interchangeable: they all read the same histograms, so one calibration run can
 * be turned into ranges by any of them.
 */
import { inputError } from '../../../errors.js';
import { cloneGraph, dataInputs, type Graph } from '../../../onnx/graph.js';
import { encodeModel } from '../../../onnx/io.js';
import type { InferenceResult } from '../../../onnx/shape-inference.js';
import type { Tensor } from '../../../onnx/tensor.js';
import { openSession } from '../../../runtime/ort.js';
import type { QRange } from '../math.js';
import type { ActivationFormat, CalibrationMethod, CalibrationSettings, TensorRange } from '../types.js';
import { entropyRange } from './entropy.js';
import { TensorHistogram } from './histogram.js';
import { minMaxRange } from './minmax.js';
import { mseRange } from './mse.js';
import { percentileRange } from './percentile.js';

export { TensorHistogram } from './histogram.js';
export { minMaxRange } from './minmax.js';
export { percentileRange } from './percentile.js';
export { entropyRange, klThreshold } from './entropy.js';
export { mseRange } from './mse.js';

/** Inputs for one model run, by input name. */
export type Feeds = Record<string, Tensor>;
export type FeedSource = Iterable<Feeds> | AsyncIterable<Feeds>;

/** Range functions by method: how a histogram becomes [min, max]. */
const METHODS: Record<CalibrationMethod, (h: TensorHistogram, s: CalibrationSettings, f: ActivationFormat, r: QRange) => TensorRange> = {
  minmax: (h) => minMaxRange(h),
  percentile: (h, s, f) => percentileRange(h, s.percentile, f),
  entropy: (h, _s, f) => entropyRange(h, f),
  mse: (h, _s, f, r) => mseRange(h, f, r),
};

/** Per-tensor statistics of a stream of runs. Memory: fixed at construction. */
export class ActivationCollector {
  readonly histograms = new Map<string, TensorHistogram>();
  /** name → channel axis → running per-channel sums (for bias correction). */
  private readonly channelSums = new Map<string, { axis: number; sums?: Float64Array; count: number }>();
  samples = 0;

  /** True when per-channel means were asked for (bias correction needs them). */
  readonly hasChannelMeans: boolean;

  constructor(names: Iterable<string>, bins: number, channelMeans?: ReadonlyMap<string, number>) {
    for (const name of names) this.histograms.set(name, new TensorHistogram(bins));
    for (const [name, axis] of channelMeans ?? []) this.channelSums.set(name, { axis, count: 0 });
    this.hasChannelMeans = channelMeans !== undefined;
  }

  /** Add one run's values; names the collector does not track are ignored. */
  add(values: Record<string, Tensor>): void {
    for (const [name, t] of Object.entries(values)) {
      const data = t.data as Float32Array;
      this.histograms.get(name)?.add(data);
      const means = this.channelSums.get(name);
      if (means) addChannelSums(means, t);
    }
  }

  /** Per-channel mean of a tensor tracked with `channelMeans`. */
  channelMean(name: string): Float64Array | undefined {
    const entry = this.channelSums.get(name);
    if (!entry?.sums || entry.count === 0) return undefined;
    return entry.sums.map((s) => s / entry.count);
  }

  get bytes(): number {
    let total = 0;
    for (const h of this.histograms.values()) total += h.bytes;
    for (const c of this.channelSums.values()) total += c.sums?.byteLength ?? 0;
    return total;
  }

  /** Ranges by any method from the same statistics. */
  ranges(settings: CalibrationSettings, format: ActivationFormat, range: QRange): Map<string, TensorRange> {
    const out = new Map<string, TensorRange>();
    const compute = METHODS[settings.method];
    for (const [name, h] of this.histograms) {
      if (h.nonFinite > 0) {
        throw inputError({
          where: `tensor '${name}'`,
          problem: `calibration produced ${h.nonFinite} NaN or infinite values`,
          fix: 'check the model in float first (slim eval): its weights or the input normalization are broken',
        });
      }
      out.set(name, reachZero(compute(h, settings, format, range)));
    }
    return out;
  }
}

/**
 * A range need not reach 0 (computeScaleZeroPoint widens it to), but a clipping method may put its
 * threshold past every value of a narrow band away from 0: MSE on a saturated sigmoid gate whose values
 * all sit in [0.4995, 0.5004] clips the band to just below it, which costs least because the whole
 * band fits in one quantization step. [min, max] then comes back inverted; it means [0, max].
 */
function reachZero(r: TensorRange): TensorRange {
  if (r.min <= r.max) return r;
  return r.max >= 0 ? { min: 0, max: r.max } : { min: r.min, max: 0 };
}

function addChannelSums(entry: { axis: number; sums?: Float64Array; count: number }, t: Tensor): void {
  const dims = t.dims;
  const channels = dims[entry.axis] ?? 1;
  entry.sums ??= new Float64Array(channels);
  let inner = 1;
  for (let i = entry.axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const data = t.data as Float32Array;
  const outer = data.length / (channels * inner);
  const sums = entry.sums;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let s = 0;
      for (let i = 0; i < inner; i++) s += data[base + i]!;
      sums[c]! += s;
    }
  }
  entry.count += outer * inner;
}

/** The graph with `names` added as outputs, so one ORT run returns their values ("taps"). */
export function addTaps(graph: Graph, names: Iterable<string>, facts: InferenceResult): Graph {
  const g = cloneGraph(graph);
  const have = new Set(g.outputs.map((o) => o.name));
  const inputs = new Set(dataInputs(g).map((v) => v.name));
  for (const name of names) {
    if (have.has(name) || inputs.has(name) || g.initializers.has(name)) continue;
    const type = facts.types.get(name);
    if (!type) throw new Error(`no type for tensor '${name}' (shape inference should have given one)`);
    g.outputs.push({ name, dtype: type.dtype, ...(type.shape ? { shape: [...type.shape] } : {}) });
    have.add(name);
  }
  return g;
}

/** Bytes of the tapped values per sample (a symbolic batch dimension counts as 1). */
export function tapBytesPerSample(names: Iterable<string>, facts: InferenceResult): number {
  let total = 0;
  for (const name of names) {
    const shape = facts.types.get(name)?.shape ?? [];
    total += 4 * shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
  }
  return total;
}

export interface RunCalibrationOptions {
  /** Tensors to collect (node outputs or graph inputs of `graph`). */
  targets: readonly string[];
  bins: number;
  /** Tensors whose per-channel mean is also wanted: name → channel axis. */
  channelMeans?: ReadonlyMap<string, number>;
  threads?: number;
  /** Called after each run with the number of samples (batch dim 0 of the first feed) so far. */
  onProgress?(samples: number): void;
}

/** Run the float graph over every feed, collecting statistics of `targets`. */
export async function runCalibration(graph: Graph, facts: InferenceResult, feeds: FeedSource, options: RunCalibrationOptions): Promise<ActivationCollector> {
  const collector = new ActivationCollector(options.targets, options.bins, options.channelMeans);
  const tapped = addTaps(graph, options.targets, facts);
  const outputs = options.targets.filter((n) => !dataInputs(graph).some((v) => v.name === n));
  const session = await openSession(encodeModel(tapped).model, {
    label: `calibration graph of '${graph.name}'`,
    ...(options.threads ? { threads: options.threads } : {}),
  });
  try {
    for await (const feed of feeds) {
      const result = outputs.length > 0 ? await session.run(feed, { outputs }) : {};
      collector.add(feed);
      collector.add(result);
      collector.samples += Object.values(feed)[0]?.dims[0] ?? 1;
      options.onProgress?.(collector.samples);
    }
  } finally {
    await session.close();
  }
  return collector;
}
