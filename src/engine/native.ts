import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { usableCores } from '../util/cpu-quota.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlimError } from '../errors.js';

/**
 * The one module that loads the LibTorch addon (native/). Everything else imports its types from
 * here and calls `loadNative()`, which explains how to enable training when the addon is missing;
 * commands that do not train never load it.
 */

export type DeviceName = 'cpu' | 'cuda';
export type AutocastName = 'none' | 'bf16' | 'fp16';

/** Role of a plan tensor: 0 trainable parameter, 1 state updated by training (BN statistics), 2 constant. */
export type TensorRole = 0 | 1 | 2;

export interface NativePlanSpec {
  device: DeviceName;
  channelsLast: boolean;
  autocast: AutocastName;
  /** Train through a captured CUDA graph (native/src/step_graph.cc). */
  cudaGraphs?: boolean;
  /** Per instruction: [kernel, nIn, nOut, nInt, nFloat, ...inSlots, ...outSlots, ...ints]. */
  code: Int32Array;
  /** Every instruction's floats, in order. */
  floats: Float64Array;
  /** ONNX node name of each instruction, for error messages. */
  nodes: string[];
  numSlots: number;
  inputSlot: number;
  outputSlots: Int32Array;
  logitsSlot: number;
  tensors: NativeTensorSpec[];
}

export interface NativeTensorSpec {
  name: string;
  slot: number;
  role: TensorRole;
  dtype: 'float32' | 'int64' | 'int32' | 'uint8' | 'int8';
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;
  decay: boolean;
}

export interface NativeStepOptions {
  lr: number;
  labelSmoothing?: number;
  /** ≥ 0 reseeds LibTorch's generators before the step (dropout). */
  seed?: number;
  temperature?: number;
  alpha?: number;
  /** Cached teacher logits for this batch (B×classes, row-major): distillation without a teacher plan. */
  targets?: Float32Array;
}

export interface NativeStepResult {
  loss: number;
  correct: number;
  count: number;
}

export interface NativeEvalResult {
  correct: number;
  count: number;
  /** Mean cross-entropy. */
  loss: number;
  logits?: Float32Array;
}

export interface NativeOptimizerConfig {
  kind: 'sgd' | 'adamw';
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface NativeOptimizerState {
  steps: number;
  first: Float32Array[];
  second: Float32Array[];
}

export interface NativePlan {
  forward(images: Float32Array, dims: readonly number[]): { data: Float32Array; dims: number[] }[];
  probe(
    images: Float32Array,
    dims: readonly number[],
    outputGrad: Float32Array,
    training: boolean,
  ): { data: Float32Array; dims: number[]; inputGrad: Float32Array };
  grad(name: string): Float32Array | null;
  read(name: string): Float32Array;
  write(name: string, data: Float32Array): void;
  tensors(): { name: string; role: TensorRole; dims: number[]; decay: boolean; masked: boolean }[];
  setOptimizer(config: NativeOptimizerConfig): void;
  optimizerState(): NativeOptimizerState;
  setOptimizerState(state: NativeOptimizerState): void;
  setMask(name: string, mask: Float32Array | null): void;
  trainStep(
    data: NativeDataSet,
    indices: Int32Array,
    aug: Int32Array | null,
    options: NativeStepOptions,
    teacher?: NativePlan | null,
  ): Promise<NativeStepResult>;
  trainStepOn(
    images: Float32Array,
    dims: readonly number[],
    labels: Int32Array,
    options: NativeStepOptions,
    teacher?: NativePlan | null,
  ): Promise<NativeStepResult>;
  evaluate(data: NativeDataSet, options: { batch: number; limit?: number; start?: number; logits?: boolean }): Promise<NativeEvalResult>;
}

export interface NativeDataSetSpec {
  pixels: Uint8Array;
  labels: Int32Array;
  dims: [number, number, number, number];
  device: DeviceName;
  scale: number;
  mean: number[];
  std: number[];
  pad: number;
}

export interface NativeDataSet {
  readonly size: number;
  /** The normalized (and augmented) batch a step would see; for tests. */
  batch(indices: Int32Array, aug: Int32Array | null): { images: Float32Array; labels: Float32Array };
}

export interface NativeAddon {
  Plan: new (spec: NativePlanSpec) => NativePlan;
  DataSet: new (spec: NativeDataSetSpec) => NativeDataSet;
  info(): { torchVersion: string; cuda: boolean; builtWithCuda: boolean; cudaGraphs: boolean; threads: number };
  setThreads(threads: number): void;
  kernelNames(): string[];
  manualSeed(seed: number): void;
  startAllocationCounting(): boolean;
  allocationStats(): { live: number; liveBytes: number; total: number; counting: boolean };
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the addon is: $SLIM_NATIVE_ADDON, else native/build/Release/slimkit_torch.node in the package. */
export function nativeAddonPath(): string {
  return process.env.SLIM_NATIVE_ADDON ?? path.join(ROOT, 'native', 'build', 'Release', 'slimkit_torch.node');
}

const ENABLE_TRAINING =
  'to enable training: install LibTorch (Debian: apt install libtorch-dev; or pip install torch; or set ' +
  'LIBTORCH=/path/to/libtorch), then run `npm run build:native` in the slimkit folder';

let cached: NativeAddon | undefined;

/** Loads the addon once. Throws a SlimError that says how to build it when it is missing or broken. */
export function loadNative(): NativeAddon {
  if (!cached) {
    cached = loadNativeFrom(nativeAddonPath());
    // The addon starts at one thread per visible CPU; under a cgroup CPU quota, no more than the quota.
    const cores = usableCores();
    if (cores < availableParallelism()) cached.setThreads(cores);
  }
  return cached;
}

/** Loads the addon at `file` (uncached). */
export function loadNativeFrom(file: string): NativeAddon {
  if (!existsSync(file)) {
    throw new SlimError({ file, problem: 'the LibTorch training addon is not built', fix: ENABLE_TRAINING });
  }
  try {
    return createRequire(import.meta.url)(file) as NativeAddon;
  } catch (e) {
    // Typically libtorch.so moved or was removed after the build, or an ABI mismatch.
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new SlimError(
      { file, problem: `the LibTorch training addon does not load (${reason})`, fix: `rebuild it: ${ENABLE_TRAINING}` },
      'input',
      { cause: e },
    );
  }
}

/** True when the addon loads; never throws. For tests and `slim info`. */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}
