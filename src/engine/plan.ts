import { SlimError } from '../errors.js';
import { cloneGraph, type Graph } from '../onnx/graph.js';
import { makeTensor, type Tensor } from '../onnx/tensor.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { compilePlan, encodePlan, type CompiledPlan, type CompileOptions } from './compile.js';
import { withSyncBatchNorm } from './distributed-plan.js';
import { whileRunning } from './exit-gate.js';
import {
  loadNative,
  type AutocastName,
  type DeviceName,
  type NativeDataSet,
  type NativeEvalResult,
  type NativeOptimizerConfig,
  type NativeOptimizerState,
  type NativePlan,
  type NativeStepOptions,
  type NativeStepResult,
} from './native.js';

/**
 * A Graph compiled for the training engine, with its tensors living in native memory. Steps and
 * evaluations are queued on the addon's torch thread and resolve with scalars; weights cross into JS
 * only when asked for (checkpoints, export).
 */

export interface PlanOptions extends CompileOptions {
  device?: DeviceName;
  /** NHWC activations and conv weights; default on for CUDA (on CPU it pays with bf16 autocast on AMX). */
  channelsLast?: boolean;
  /** Mixed precision for forward passes on CUDA; default 'none'. */
  autocast?: AutocastName;
  /** LibTorch intra-op threads (process-wide); default: the addon's (all cores). */
  threads?: number;
  /** Batch norm statistics over all data-parallel ranks in training (distributed-plan.ts). */
  syncBatchNorm?: boolean;
  /**
   * CUDA only: capture the training step once as a CUDA graph and replay it (SGD; after 3 eager
   * warm-up steps). Cuts the per-kernel launch cost that bounds small-batch GPU steps.
   */
  cudaGraphs?: boolean;
}

/** Native failures are almost always a model/data mismatch (shapes, dtypes): report them as input errors. */
function inputFailure(what: string, file: string | undefined, e: unknown): SlimError {
  if (e instanceof SlimError) return e;
  const message = e instanceof Error ? e.message : String(e);
  // The addon's own words for a CUDA run on a build or machine without one: say what to do.
  const fix = /device 'cuda' was asked for/.test(message)
    ? { fix: 'train with --device cpu here, or on a GPU machine whose PyTorch has CUDA (npm run build:native links it when `python3 -c "import torch"` finds it)' }
    : {};
  return new SlimError({ ...(file ? { file } : {}), problem: `${what}: ${message}`, ...fix }, 'input', { cause: e });
}

function wrapNative<T>(what: string, file: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw inputFailure(what, file, e);
  }
}

async function wrapNativeAsync<T>(what: string, file: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    // Ctrl-C waits for the running piece (exit-gate.ts).
    return await whileRunning(fn);
  } catch (e) {
    throw inputFailure(what, file, e);
  }
}

export class EnginePlan {
  private constructor(
    readonly compiled: CompiledPlan,
    readonly native: NativePlan,
    readonly device: DeviceName,
    private readonly file: string | undefined,
  ) {}

  static create(graph: Graph, options: PlanOptions = {}): EnginePlan {
    const addon = loadNative();
    if (options.threads !== undefined) addon.setThreads(options.threads);
    const compiled = options.syncBatchNorm ? withSyncBatchNorm(compilePlan(graph, options)) : compilePlan(graph, options);
    const device = options.device ?? 'cpu';
    const encoded = encodePlan(compiled, addon.kernelNames());
    const native = wrapNative('cannot build the training plan', options.file, () => new addon.Plan({
      device,
      channelsLast: options.channelsLast ?? device === 'cuda',
      autocast: options.autocast ?? 'none',
      ...(options.cudaGraphs ? { cudaGraphs: true } : {}),
      ...encoded,
      numSlots: compiled.numSlots,
      inputSlot: compiled.input.slot,
      outputSlots: Int32Array.from(compiled.outputs.map((o) => o.slot)),
      logitsSlot: compiled.logits.slot,
    }));
    return new EnginePlan(compiled, native, device, options.file);
  }

  /** The graph the plan runs (constants and shape subgraphs folded; a free-size model's kept free: CompileOptions.imageSize). */
  get graph(): Graph {
    return this.compiled.graph;
  }

  /** Trainable parameters, in the optimizer's order. */
  get paramNames(): string[] {
    return this.compiled.tensors.filter((t) => t.role === 0).map((t) => t.name);
  }

  /** Trainable numbers: the elements of all parameter tensors (11.17 M for ResNet18). */
  get parameterCount(): number {
    return this.compiled.tensors.filter((t) => t.role === 0).reduce((n, t) => n + t.value.data.length, 0);
  }

  /** Tensors training updates besides the parameters (BN running statistics). */
  get stateNames(): string[] {
    return this.compiled.tensors.filter((t) => t.role === 1).map((t) => t.name);
  }

  /** Eval-mode forward pass; one tensor per graph output. */
  forward(input: Tensor<'float32'>): Tensor<'float32'>[] {
    return wrapNative('forward pass failed', this.file, () =>
      this.native.forward(input.data, input.dims).map((o) => makeTensor('float32', o.dims, o.data)),
    );
  }

  /**
   * Forward in train or eval mode, then backward from `outputGrad` on the first output. Returns the
   * output and d(output·outputGrad)/d(input); parameter gradients are then readable with `grad`.
   */
  probe(input: Tensor<'float32'>, outputGrad: Float32Array, training: boolean): { output: Tensor<'float32'>; inputGrad: Float32Array } {
    return wrapNative('backward pass failed', this.file, () => {
      const r = this.native.probe(input.data, input.dims, outputGrad, training);
      return { output: makeTensor('float32', r.dims, r.data), inputGrad: r.inputGrad };
    });
  }

  grad(name: string): Float32Array | undefined {
    return this.native.grad(name) ?? undefined;
  }

  read(name: string): Float32Array {
    return this.native.read(name);
  }

  write(name: string, data: Float32Array): void {
    this.native.write(name, data);
  }

  /** The plan's graph with every trained tensor (parameters and BN statistics) written back. */
  toGraph(): Graph {
    const g = cloneGraph(this.compiled.graph);
    for (const t of this.compiled.tensors) {
      if (t.role === 2) continue;
      g.initializers.set(t.name, makeTensor('float32', t.value.dims, this.native.read(t.name)));
    }
    return g;
  }

  /** Parameters and state by name (checkpoints). */
  weights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const t of this.compiled.tensors) if (t.role !== 2) out.set(t.name, this.native.read(t.name));
    return out;
  }

  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    for (const t of this.compiled.tensors) {
      if (t.role === 2) continue;
      const data = weights.get(t.name);
      if (!data) throw new SlimError({ problem: `the saved weights lack tensor '${t.name}'`, fix: 'the checkpoint belongs to a different model' });
      wrapNative(`cannot restore '${t.name}'`, this.file, () => this.native.write(t.name, data));
    }
  }

  setOptimizer(config: NativeOptimizerConfig): void {
    this.native.setOptimizer(config);
  }

  optimizerState(): NativeOptimizerState {
    return this.native.optimizerState();
  }

  setOptimizerState(state: NativeOptimizerState): void {
    wrapNative('cannot restore the optimizer state', this.file, () => this.native.setOptimizerState(state));
  }

  /** A fixed 0/1 mask on a weight, applied now and after every update (pruning); null removes it. */
  setMask(name: string, mask: Float32Array | null): void {
    wrapNative(`cannot mask '${name}'`, this.file, () => this.native.setMask(name, mask));
  }

  /** One update on images of `data` (indices, and B×3 crop/flip placements when augmenting). */
  trainStep(
    data: DeviceImageSet,
    batch: { indices: Int32Array; aug?: Int32Array },
    options: NativeStepOptions,
    teacher?: EnginePlan,
  ): Promise<NativeStepResult> {
    return wrapNativeAsync('training step failed', this.file, () =>
      this.native.trainStep(data.native, batch.indices, batch.aug ?? null, options, teacher?.native ?? null),
    );
  }

  /**
   * Knowledge distillation: one update of this plan (the student) on loss α·CE + (1 − α)·T²·KL, with
   * `teacher` run in eval mode without gradients on the same (augmented) batch.
   */
  distillStep(
    teacher: EnginePlan,
    data: DeviceImageSet,
    batch: { indices: Int32Array; aug?: Int32Array },
    options: NativeStepOptions & { temperature: number; alpha: number },
  ): Promise<NativeStepResult> {
    return this.trainStep(data, batch, options, teacher);
  }

  /** One update on given normalized images (benchmarks; comparisons with PyTorch). */
  trainStepOn(images: Tensor<'float32'>, labels: Int32Array, options: NativeStepOptions, teacher?: EnginePlan): Promise<NativeStepResult> {
    return wrapNativeAsync('training step failed', this.file, () =>
      this.native.trainStepOn(images.data, images.dims, labels, options, teacher?.native ?? null),
    );
  }

  /** Eval-mode pass over images `start` (default 0) … `limit` − 1 of `data` (to the end by default). */
  evaluate(data: DeviceImageSet, options: { batch?: number; limit?: number; start?: number; logits?: boolean } = {}): Promise<NativeEvalResult> {
    return wrapNativeAsync('evaluation failed', this.file, () =>
      this.native.evaluate(data.native, {
        batch: options.batch ?? 256,
        ...(options.limit ? { limit: options.limit } : {}),
        ...(options.start ? { start: options.start } : {}),
        logits: options.logits ?? false,
      }),
    );
  }

  /**
   * `evaluate` over all of `data` in chunks of whole batches — the same result — calling `onChunk` with the
   * images done after each, so a long evaluation can show progress.
   */
  async evaluateInChunks(data: DeviceImageSet, batch: number, onChunk: (done: number, total: number) => void, chunkBatches = 8): Promise<NativeEvalResult> {
    const total = data.count;
    const step = batch * chunkBatches;
    let [correct, lossSum, count] = [0, 0, 0];
    for (let start = 0; start < total; start += step) {
      const r = await this.evaluate(data, { batch, start, limit: Math.min(total, start + step) });
      [correct, lossSum, count] = [correct + r.correct, lossSum + r.loss * r.count, count + r.count];
      onChunk(count, total);
    }
    return { correct, count, loss: count > 0 ? lossSum / count : 0 };
  }
}

/** An image set uploaded once, as raw bytes, to the training device; batches are cut and augmented there. */
export class DeviceImageSet {
  private constructor(
    readonly native: NativeDataSet,
    readonly name: string,
    readonly count: number,
    readonly labels: Uint16Array,
  ) {}

  static upload(set: ImageSet, options: { device?: DeviceName; normalization: Normalization; pad?: number; limit?: number }): DeviceImageSet {
    const addon = loadNative();
    const [c, h, w] = set.imageShape;
    const count = Math.min(set.labels.length, options.limit ?? Infinity);
    const n = options.normalization;
    if (n.mean.length !== c || n.std.length !== c) {
      throw new SlimError({ where: set.name, problem: `normalization has ${n.mean.length} means and ${n.std.length} stds for ${c} channels` });
    }
    const labels = set.labels.subarray(0, count);
    const native = wrapNative('cannot upload the data set', set.name, () => new addon.DataSet({
      pixels: set.pixels.subarray(0, count * c * h * w),
      labels: Int32Array.from(labels),
      dims: [count, c, h, w],
      device: options.device ?? 'cpu',
      scale: n.scale,
      mean: n.mean,
      std: n.std,
      pad: options.pad ?? 4,
    }));
    return new DeviceImageSet(native, set.name, count, labels);
  }
}
