import { SlimError } from '../errors.js';
import { loadNative, type NativeDataSet, type NativePlan, type NativeStepOptions } from './native.js';

/**
 * The addon's `dist` object (native/src/dist_addon.cc): c10d process groups and the data-parallel
 * step. Only distributed*.ts use it; the addon itself is loaded by native.ts alone.
 */

export interface NativeDistInit {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Bounds the rendezvous and every collective. */
  timeoutMs: number;
  backend: 'gloo' | 'nccl';
  /** Gloo's network interface ($GLOO_SOCKET_IFNAME). */
  interface?: string;
}

export interface NativeDistStepResult {
  /** Mean loss over the global batch. */
  loss: number;
  correct: number;
  count: number;
  /** Gradient buckets whose all-reduce started during backward. */
  overlapped: number;
  buckets: number;
}

export interface NativeDiagnosis {
  /** False when the rendezvous store (hosted by rank 0) did not answer. */
  storeReachable: boolean;
  storeError: string;
  ranks: { rank: number; alive: boolean; step: number }[];
}

export interface NativeDist {
  available(): { gloo: boolean; nccl: boolean; initialized: boolean };
  init(options: NativeDistInit): Promise<{ rank: number; worldSize: number; backend: string }>;
  attach(plan: NativePlan, options?: { bucketBytes?: number }): { buckets: number };
  syncPlan(plan: NativePlan, options: { root: number; optimizer: boolean }): Promise<void>;
  averageState(plan: NativePlan): Promise<void>;
  trainStep(
    plan: NativePlan,
    data: NativeDataSet,
    indices: Int32Array,
    aug: Int32Array | null,
    options: NativeStepOptions,
    teacher: NativePlan | null,
    extra: { share: number; step: number },
  ): Promise<NativeDistStepResult>;
  allreduce(values: Float64Array): Promise<Float64Array>;
  broadcastBytes(bytes: Uint8Array | null, root: number): Promise<Uint8Array>;
  barrier(): Promise<void>;
  diagnose(probeMs: number): Promise<NativeDiagnosis>;
  shutdown(): void;
}

/** The addon's distributed bindings; explains how to get them when the addon predates them. */
export function loadDist(): NativeDist {
  const addon = loadNative() as ReturnType<typeof loadNative> & { dist?: NativeDist };
  if (!addon.dist) {
    throw new SlimError({ problem: 'the training addon was built without distributed training', fix: 'rebuild it with `npm run build:native`' });
  }
  return addon.dist;
}
