import { settingWord } from './resume.js';
import { SlimError, usageError } from '../errors.js';
import type { ImageSet } from '../data/types.js';
import { pinGpu, type DistributedEnv } from './distributed-env.js';
import { loadDist, type NativeDist } from './distributed-native.js';
import { shardBatch, shardRange, sliceImageSet, type BatchSelection } from './distributed-shard.js';
import type { DeviceName, NativeEvalResult, NativeStepOptions, NativeStepResult } from './native.js';
import type { DeviceImageSet, EnginePlan } from './plan.js';

/**
 * Data-parallel training over torch.distributed (c10d): what `trainModel` asks of a run with several
 * ranks. Every rank builds the same plan; rank 0's weights (and, on resume, its checkpoint) are
 * broadcast; each step each rank trains on its shard of the global batch while the addon all-reduces
 * gradients in buckets during backward; evaluation is sharded and summed; only rank 0 writes.
 * Collective failures are turned into errors that name the rank that stopped (heartbeats in the
 * rendezvous store tell a dead rank from a stuck one).
 */

export interface DistributedOptions {
  env: DistributedEnv;
  device: DeviceName;
  /** Default: NCCL on CUDA when the addon has it, else Gloo. */
  backend?: 'gloo' | 'nccl';
  /** Batch statistics over all ranks (default false: each rank normalizes with its own shard's). */
  syncBatchNorm?: boolean;
  /** Bounds the rendezvous and every collective (default 300 s). */
  timeoutSeconds?: number;
  /** Gradient bucket cap (default 25 MiB, as PyTorch's DDP). */
  bucketBytes?: number;
  /** Named in failure messages, where the last good checkpoint lives. */
  checkpointDir?: string;
}

/** The hook points `trainModel` calls when it runs as one rank of several (see train.ts). */
export interface DistributedHooks {
  readonly rank: number;
  readonly worldSize: number;
  /** Rank 0 alone writes checkpoints, logs and models. */
  readonly writer: boolean;
  readonly syncBatchNorm: boolean;
  /** Installs the gradient reducer; fails on every rank when the ranks' settings differ. */
  attach(plan: EnginePlan, settings: Record<string, unknown>): Promise<void>;
  /** Rank 0 runs `load` (start fresh or read the checkpoint); its result and its plan state reach every rank. */
  restore<T>(plan: EnginePlan, load: () => Promise<T>): Promise<T>;
  /** This rank's part of a global batch. */
  shard<T extends BatchSelection>(batch: T): T;
  /** The test images this rank evaluates (the first `limit`, cut in contiguous parts). */
  evalShard(set: ImageSet, limit?: number): ImageSet;
  trainStep(
    plan: EnginePlan,
    data: DeviceImageSet,
    local: BatchSelection,
    options: NativeStepOptions,
    teacher: EnginePlan | undefined,
    at: { step: number; batch: number },
  ): Promise<NativeStepResult>;
  evaluate(plan: EnginePlan, data: DeviceImageSet, options: { batch: number }): Promise<NativeEvalResult>;
}

const DEFAULT_TIMEOUT_S = 300;
/** How long diagnosis watches the heartbeats (they beat every second). */
const PROBE_MS = 2500;
/** How long past the probe a diagnosis may take before its silence is the answer. */
const DIAGNOSIS_GRACE_MS = 10_000;
/** Messages of collectives that failed because of a peer, as Gloo, NCCL and c10d word them. */
const PEER_FAILURE = /gloo|nccl|c10d|connection (closed|reset|refused)|timed out|socket|broken pipe|peer/i;

export class DistributedTraining implements DistributedHooks {
  readonly writer: boolean;
  readonly syncBatchNorm: boolean;
  /** Step this rank is at, for messages. */
  private step = -1;
  /** Gradient buckets, and how many of them started their all-reduce while backward still ran (last step). */
  readonly overlap = { buckets: 0, overlapped: 0 };

  private constructor(
    private readonly native: NativeDist,
    readonly env: DistributedEnv,
    readonly backend: string,
    private readonly options: DistributedOptions,
  ) {
    this.writer = env.rank === 0;
    this.syncBatchNorm = options.syncBatchNorm ?? false;
  }

  get rank(): number {
    return this.env.rank;
  }

  get worldSize(): number {
    return this.env.worldSize;
  }

  /** Rendezvous with the other ranks and form the process group. */
  static async start(options: DistributedOptions): Promise<DistributedTraining> {
    const { env } = options;
    // Before CUDA starts in this process: each local rank keeps one GPU.
    if (options.device === 'cuda') pinGpu(env.localRank);
    const native = loadDist();
    const can = native.available();
    const backend = options.backend ?? (options.device === 'cuda' && can.nccl ? 'nccl' : 'gloo');
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_S;
    try {
      const interface_ = process.env.GLOO_SOCKET_IFNAME;
      await native.init({
        rank: env.rank,
        worldSize: env.worldSize,
        masterAddr: env.masterAddr,
        masterPort: env.masterPort,
        timeoutMs: timeoutSeconds * 1000,
        backend,
        ...(interface_ ? { interface: interface_ } : {}),
      });
    } catch (e) {
      throw new SlimError({
        where: `rank ${env.rank} of ${env.worldSize}`,
        problem: `distributed start-up failed: ${firstLine(e)}`,
        fix: `start all ${env.worldSize} ranks with the same MASTER_ADDR=${env.masterAddr} and MASTER_PORT=${env.masterPort}, reachable from every host (raise --dist-timeout if they start slowly)`,
      });
    }
    return new DistributedTraining(native, env, backend, options);
  }

  async attach(plan: EnginePlan, settings: Record<string, unknown>): Promise<void> {
    // Ranks started with different flags would train different things or deadlock: refuse together.
    const mine = JSON.stringify({ ...settings, syncBatchNorm: this.syncBatchNorm, bucketBytes: this.options.bucketBytes ?? null, params: plan.paramNames });
    const root = new TextDecoder().decode(await this.collective('checking settings', () => this.native.broadcastBytes(this.writer ? new TextEncoder().encode(mine) : null, 0)));
    const flags = new Float64Array(this.worldSize);
    flags[this.rank] = root === mine ? 0 : 1;
    const differ = await this.collective('checking settings', () => this.native.allreduce(flags));
    const ranks = [...differ.keys()].filter((r) => differ[r]! > 0);
    if (ranks.length > 0) {
      // A rank that differs knows which settings: rank 0's came to it.
      const own = root === mine ? '' : ` (here: ${differingSettings(root, mine).map(settingWord).join(', ')})`;
      throw usageError(`${plural(ranks)} ${ranks.join(', ')} started with other training settings than rank 0${own}`, 'start every rank with the same command line and model');
    }
    this.native.attach(plan.native, this.options.bucketBytes !== undefined ? { bucketBytes: this.options.bucketBytes } : {});
  }

  async restore<T>(plan: EnginePlan, load: () => Promise<T>): Promise<T> {
    let payload = '';
    let failure: unknown;
    if (this.writer) {
      try {
        payload = JSON.stringify({ value: await load() });
      } catch (e) {
        failure = e;
        payload = JSON.stringify({ error: e instanceof Error ? e.message : String(e), usage: e instanceof SlimError && e.kind === 'usage' });
      }
    }
    const bytes = await this.collective('sharing the start state', () => this.native.broadcastBytes(this.writer ? new TextEncoder().encode(payload) : null, 0));
    if (failure) throw failure;
    const shared = JSON.parse(new TextDecoder().decode(bytes)) as { value?: T; error?: string; usage?: boolean };
    if (shared.error !== undefined) throw new SlimError({ where: `rank ${this.rank}`, problem: `rank 0 could not start: ${shared.error}` }, shared.usage ? 'usage' : 'input');
    // Identical weights everywhere: rank 0's initial (or restored) parameters, statistics and optimizer state.
    await this.collective('broadcasting the weights', () => this.native.syncPlan(plan.native, { root: 0, optimizer: true }));
    return shared.value as T;
  }

  shard<T extends BatchSelection>(batch: T): T {
    if (batch.indices.length < this.worldSize) {
      throw usageError(`a global batch of ${batch.indices.length} cannot be shared by ${this.worldSize} ranks`, `use --batch ≥ ${this.worldSize}`);
    }
    return shardBatch(batch, this.rank, this.worldSize);
  }

  evalShard(set: ImageSet, limit?: number): ImageSet {
    const count = Math.min(set.labels.length, limit ?? Infinity);
    if (count < this.worldSize) throw usageError(`the test set has ${count} images, fewer than the ${this.worldSize} ranks`, 'raise --test-limit');
    const [from, to] = shardRange(count, this.rank, this.worldSize);
    return sliceImageSet(set, from, to);
  }

  async trainStep(
    plan: EnginePlan,
    data: DeviceImageSet,
    local: BatchSelection,
    options: NativeStepOptions,
    teacher: EnginePlan | undefined,
    at: { step: number; batch: number },
  ): Promise<NativeStepResult> {
    this.step = at.step;
    // Dropout masks differ per rank, as they differ per image in a single process.
    const seed = options.seed !== undefined && options.seed >= 0 ? { seed: (options.seed + 7919 * this.rank) % 2 ** 31 } : {};
    const r = await this.collective(`step ${at.step + 1}`, () =>
      this.native.trainStep(plan.native, data.native, local.indices, local.aug ?? null, { ...options, ...seed }, teacher?.native ?? null, {
        share: local.indices.length / at.batch,
        step: at.step,
      }),
    );
    this.overlap.buckets = r.buckets;
    this.overlap.overlapped = r.overlapped;
    return { loss: r.loss, correct: r.correct, count: r.count };
  }

  async evaluate(plan: EnginePlan, data: DeviceImageSet, options: { batch: number }): Promise<NativeEvalResult> {
    // Each rank's BN running statistics saw only its shards: average them (SyncBatchNorm keeps them equal),
    // so every rank evaluates, and rank 0 saves, one model.
    if (!this.syncBatchNorm && plan.stateNames.length > 0) await this.collective('averaging BN statistics', () => this.native.averageState(plan.native));
    await this.checkSameWeights(plan);
    const local = await plan.evaluate(data, { batch: options.batch });
    const sums = await this.collective('evaluation', () => this.native.allreduce(Float64Array.from([local.loss * local.count, local.correct, local.count])));
    const count = sums[2]!;
    return { loss: count > 0 ? sums[0]! / count : 0, correct: sums[1]!, count };
  }

  /**
   * The ranks must hold bit-identical weights (same reduced gradients, same updates): compare a
   * checksum of every trained tensor, so a silent divergence stops the run instead of exporting one
   * rank's model as if it were everyone's.
   */
  private async checkSameWeights(plan: EnginePlan): Promise<void> {
    const sums = new Float64Array(this.worldSize);
    sums[this.rank] = weightChecksum(plan.weights());
    const all = await this.collective('comparing weights', () => this.native.allreduce(sums));
    // Non-finite weights are the trainer's to report ("the weights have blown up"), not a divergence of ranks.
    if (!Number.isFinite(all[0]!)) return;
    const differ = [...all.keys()].filter((r) => all[r] !== all[0]);
    if (differ.length > 0) {
      throw new SlimError({
        where: `rank ${this.rank}, step ${this.step + 1}`,
        problem: `the weights of ${plural(differ)} ${differ.join(', ')} differ from rank 0's (checksums ${differ.map((r) => all[r]).join(', ')} vs ${all[0]}): the ranks no longer train one model`,
        fix: 'this is a slimkit bug; please report it with the command line (training on one rank is not affected)',
      });
    }
  }

  /** Leaves the group after a clean finish. */
  finish(): void {
    this.native.shutdown();
  }

  /** Runs a collective; a failure caused by another rank becomes an error that names it. */
  private async collective<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (e instanceof SlimError) throw e;
      const message = firstLine(e);
      if (!PEER_FAILURE.test(message)) {
        throw new SlimError({ where: `rank ${this.rank}, ${what}`, problem: message }, 'input', { cause: e });
      }
      const culprit = await this.culprit();
      throw new SlimError(
        {
          where: `rank ${this.rank}, ${what}`,
          problem: `${culprit.text} (${message}); ${this.checkpointNote()}`,
          fix: `find out why ${culprit.who} stopped (its own output, its host), then rerun with --resume`,
        },
        'input',
        { cause: e },
      );
    }
  }

  /** Which rank stopped: heartbeats that did not advance, or the rank that is behind. */
  private async culprit(): Promise<{ text: string; who: string }> {
    let d;
    try {
      // A frozen rank 0 still accepts the store's connection and never answers: the probe would wait for ever.
      d = await withinTime(this.native.diagnose(PROBE_MS), PROBE_MS + DIAGNOSIS_GRACE_MS);
    } catch {
      return { text: 'another rank failed', who: 'the other ranks' };
    }
    if (d === undefined) return { text: `rank 0, which hosts the rendezvous store, accepts connections but does not answer (frozen, or its host overloaded)`, who: 'rank 0' };
    if (!d.storeReachable) return { text: `rank 0, which hosts the rendezvous store, stopped answering (${d.storeError})`, who: 'rank 0' };
    const dead = d.ranks.filter((r) => !r.alive).map((r) => r.rank);
    if (dead.length > 0) {
      const who = `${plural(dead)} ${dead.join(', ')}`;
      return { text: `${who} stopped (no heartbeat for ${PROBE_MS / 1000} s: killed, crashed or frozen)`, who };
    }
    const furthest = Math.max(...d.ranks.map((r) => r.step));
    const behind = d.ranks.filter((r) => r.step < furthest);
    if (behind.length > 0) {
      const text = behind.map((r) => `rank ${r.rank} is alive but stuck at step ${r.step + 1}`).join(', ') + ` while others reached step ${furthest + 1}`;
      return { text, who: `${plural(behind.map((r) => r.rank))} ${behind.map((r) => r.rank).join(', ')}` };
    }
    return { text: `a collective with another rank failed at step ${this.step + 1} though every rank still beats`, who: 'the other ranks' };
  }

  private checkpointNote(): string {
    return this.options.checkpointDir ? `the last good checkpoint (if any) is in ${this.options.checkpointDir}` : 'no --checkpoint-dir was given, so nothing was saved';
  }
}

/** Position-weighted float64 sum of every value: equal only for (practically) identical tensors. */
export function weightChecksum(weights: ReadonlyMap<string, Float32Array>): number {
  let sum = 0;
  for (const data of weights.values()) {
    for (let i = 0; i < data.length; i++) sum += data[i]! * ((i % 13) + 1);
  }
  return sum;
}

/** The top-level keys whose values differ between two JSON objects. */
function differingSettings(a: string, b: string): string[] {
  const [x, y] = [JSON.parse(a) as Record<string, unknown>, JSON.parse(b) as Record<string, unknown>];
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
}

/** `promise`'s value, or undefined once `ms` have passed first. */
async function withinTime<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

function plural(ranks: readonly number[]): string {
  return ranks.length === 1 ? 'rank' : 'ranks';
}
