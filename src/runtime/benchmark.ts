/**
 * Latency, throughput and peak memory of one model on ORT's CPU provider, fed seeded random inputs of
 * the model's input shape.
 * Several models are timed in turns (benchmark-turns.ts); percentiles are nearest-rank (percentiles.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { usageError } from '../errors.js';
import type { Tensor } from '../onnx/tensor.js';
import { fixedBatchOf } from '../onnx/image-input.js';
import { Random } from '../util/random.js';
import { defaultThreads, openSession, type Optimization, type OrtModel } from './ort.js';
import { benchmarkInputs, randomTensor } from './random-input.js';
import { timeInTurns, waitUntilIdle, type RunCount } from './benchmark-turns.js';
import type { LatencyStats } from './percentiles.js';
import type { OtherLoad } from './cpu-load.js';

export type BenchmarkPhase = 'warmup' | 'latency' | 'throughput';

export interface BenchmarkOptions {
  /** Intra-op threads; default: the cores available to this process. */
  threads?: number;
  /** Batch of the latency runs; default 1 (or the model's fixed batch). */
  batch?: number;
  /** Untimed runs before timing; default 10. */
  warmupRuns?: number;
  /** Timed latency runs; default 100, at least 50 (nearest-rank p99 of fewer than 100 runs is the slowest one); 'auto': AUTO_RUNS (benchmark-turns.ts). */
  runs?: RunCount;
  /** Batch of the throughput phase; default 32 (or the model's fixed batch). 0 skips the phase. */
  throughputBatch?: number;
  /** Minimum length of the throughput phase, in THROUGHPUT_TURNS slices of at least one run each; default 2 s. */
  throughputSeconds?: number;
  /** Full shapes for inputs whose dims beyond the batch are symbolic or unknown. */
  inputShapes?: Record<string, number[]>;
  optimization?: Optimization;
  /** Idle intra-op threads spin before sleeping (SessionOptions.spinning); default ORT's (true). */
  spinning?: boolean;
  /** Names the model in errors when it is given as bytes. */
  label?: string;
  /** Seed of the random inputs; default 0. */
  seed?: number;
  /** Work done of total in the phase (runs; in the throughput phase, turns), over all models timed. */
  onProgress?(done: number, total: number, phase: BenchmarkPhase): void;
}

/** What timing a model in turns gives, wherever it ran. */
export interface TimedResult {
  latencyMs: LatencyStats;
  /** Every timed latency run in ms, ascending. */
  samplesMs: number[];
  /**
   * The p50 of each turn of LATENCY_BLOCK runs, in turn order (benchmark-turns.ts). Models timed together
   * took their turns in the same rounds, so the ratio of two models' turn p50s compares them under the
   * same load: the median of those ratios is the comparison to trust on a busy machine.
   */
  turnP50Ms: number[];
  runs: number;
  batch: number;
  threads: number;
  throughputBatch: number;
  throughputRuns: number;
  /** Images per second at throughputBatch; 0 when the phase was skipped. */
  throughputIps: number;
  /**
   * The CPU other processes took while the timed runs ran (Linux; runtime/cpu-load.ts), read before the
   * timed processes close: a browser's are not this process's children once it is gone.
   */
  otherLoad?: OtherLoad;
}

export interface PeakRss {
  /** Peak resident memory of the process while this model was loaded and run. */
  peakRssBytes: number;
  /** Resident memory just before the session was created (Node itself, the model bytes); 0 with 'maxrss'. */
  baselineRssBytes: number;
  /**
   * 'vmhwm': the kernel's high-water mark, reset before loading (so the peak belongs to this model).
   * 'maxrss': process.resourceUsage().maxRSS, the peak over the whole process life (reset unavailable).
   */
  peakRssSource: 'vmhwm' | 'maxrss';
}

/** A model timed by onnxruntime-node: the timing and the peak memory of its process. */
export type BenchmarkResult = TimedResult & PeakRss;

/**
 * One model's open session, timed in pieces so that several models can take turns (benchmark-turns.ts).
 * `rewarm` asks for one untimed run first: after another process has run, caches and the thread pool
 * are someone else's, and the first run pays for that.
 */
export interface ModelTimer<Finish = PeakRss> {
  readonly batch: number;
  readonly throughputBatch: number;
  readonly threads: number;
  warmup(runs: number): Promise<void>;
  /** Batch-`batch` runs, each timed, in ms (in run order). */
  timeRuns(runs: number, rewarm: boolean): Promise<number[]>;
  /** Batch-`throughputBatch` runs until `seconds` have passed (at least one run). */
  timeThroughput(seconds: number, rewarm: boolean): Promise<{ runs: number; seconds: number }>;
  /** After a turn, before the next model's: returns once this model's runtime threads are idle. */
  quiesce(): Promise<void>;
  /** What the timer adds to the result (onnxruntime-node: peak memory since it opened); closes the session. */
  finish(): Promise<Finish>;
  /** Closes without measuring (after an error elsewhere); safe to call twice. */
  close(): Promise<void>;
}

/**
 * After a turn, waits until this process's ONNX Runtime threads have stopped spinning: idle workers spin
 * for about 50 ms after the last run (measured: 50 ms of CPU in the first 50 ms of idleness at 2
 * threads), and in that time they take CPUs from the next model's turn — with 2 threads on 2 cores a
 * tenth of its runs paid about 4.7 ms. Polls the process's CPU time until a 5 ms interval uses less than
 * 10 % of a core, for at most 300 ms.
 */
export function quiesce(): Promise<void> {
  const cpuMs = (): number => {
    const used = process.cpuUsage();
    return (used.user + used.system) / 1000;
  };
  return waitUntilIdle(cpuMs, { intervalMs: 5, idleBelow: 0.5, limitMs: 300, fallbackMs: 0 });
}

/** What opening one model's timer takes: the per-model options and the session's settings. */
export type TimerOptions = Omit<BenchmarkOptions, 'onProgress' | 'runs' | 'warmupRuns' | 'throughputSeconds'>;

/** A model's session in this process, fed seeded random inputs of its shape. */
export async function openTimer(model: Uint8Array | string, options: TimerOptions = {}): Promise<ModelTimer> {
  const threads = options.threads ?? defaultThreads();
  const memory = resetPeakRss();
  const session = await openSession(model, {
    threads,
    ...(options.optimization ? { optimization: options.optimization } : {}),
    ...(options.spinning !== undefined ? { spinning: options.spinning } : {}),
    ...(options.label ? { label: options.label } : {}),
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await session.close();
  };
  try {
    const random = new Random(options.seed ?? 0);
    const batch = batchFor(session, options.batch, 1, 'batch');
    const latencyFeeds = randomFeeds(session, batch, options.inputShapes, random);
    const throughputBatch = options.throughputBatch === 0 ? 0 : batchFor(session, options.throughputBatch, 32, 'throughput batch');
    const throughputFeeds = throughputBatch === 0 || throughputBatch === batch ? latencyFeeds : randomFeeds(session, throughputBatch, options.inputShapes, random);
    // The first run at a new shape allocates: it is never timed.
    let throughputPrimed = throughputFeeds === latencyFeeds;
    return {
      batch,
      throughputBatch,
      threads,
      async warmup(runs) {
        for (let i = 0; i < runs; i++) await session.run(latencyFeeds);
      },
      async timeRuns(runs, rewarm) {
        if (rewarm) await session.run(latencyFeeds);
        const samples: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = process.hrtime.bigint();
          await session.run(latencyFeeds);
          samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        return samples;
      },
      async timeThroughput(seconds, rewarm) {
        if (throughputBatch === 0) throw new Error('timeThroughput on a timer without a throughput batch');
        if (rewarm || !throughputPrimed) await session.run(throughputFeeds);
        throughputPrimed = true;
        const targetNs = BigInt(Math.round(seconds * 1e9));
        const t0 = process.hrtime.bigint();
        let runs = 0;
        let elapsed = 0n;
        while (runs < 1 || elapsed < targetNs) {
          await session.run(throughputFeeds);
          runs++;
          elapsed = process.hrtime.bigint() - t0;
        }
        return { runs, seconds: Number(elapsed) / 1e9 };
      },
      quiesce,
      async finish() {
        const peak = readPeakRss(memory);
        await close();
        return peak;
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Checks the options every benchmark shares; returns them with their defaults. */
export function timingPlan(options: Pick<BenchmarkOptions, 'warmupRuns' | 'runs' | 'throughputSeconds'>): { warmupRuns: number; runs: RunCount; throughputSeconds: number } {
  const warmupRuns = options.warmupRuns ?? 10;
  const runs = options.runs ?? 100;
  const throughputSeconds = options.throughputSeconds ?? 2;
  if (runs !== 'auto' && (!Number.isInteger(runs) || runs < 50)) throw usageError(`runs must be a whole number ≥ 50, got ${runs}`, 'percentiles need at least 50 samples');
  if (!Number.isInteger(warmupRuns) || warmupRuns < 0) throw usageError(`warmup runs must be a whole number ≥ 0, got ${warmupRuns}`);
  if (!(throughputSeconds >= 0)) throw usageError(`throughput seconds must be ≥ 0, got ${throughputSeconds}`);
  return { warmupRuns, runs, throughputSeconds };
}

/** One model in this process: warm-up, latency runs, then the throughput phase. */
export async function benchmark(model: Uint8Array | string, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const plan = timingPlan(options);
  const { onProgress, runs: _runs, warmupRuns: _warmup, throughputSeconds: _seconds, ...timerOptions } = options;
  const timer = await openTimer(model, timerOptions);
  const [result] = await timeInTurns([timer], { ...plan, ...(onProgress ? { onProgress } : {}) });
  return result!;
}

/** The asked batch, or the model's fixed batch (an explicit, different request is an error). */
function batchFor(session: OrtModel, asked: number | undefined, fallback: number, flag: string): number {
  // A numeric first axis is a batch on image (rank 4) and feature (rank 2) inputs only: C×H×W keeps its C.
  const fixed = session.inputs.map((i) => fixedBatchOf(i.dims)).find((d): d is number => d !== undefined);
  if (fixed !== undefined) {
    if (asked !== undefined && asked !== fixed) {
      throw usageError(`${flag} ${asked} is not possible: ${session.source} has a fixed batch of ${fixed}`, `use ${flag} ${fixed} or export the model with a dynamic batch axis`);
    }
    return fixed;
  }
  const batch = asked ?? fallback;
  if (!Number.isInteger(batch) || batch < 1) throw usageError(`${flag} must be a whole number ≥ 1, got ${batch}`);
  return batch;
}

function randomFeeds(session: OrtModel, batch: number, shapes: Record<string, number[]> | undefined, random: Random): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const input of benchmarkInputs(session.source, session.inputs, batch, shapes)) feeds[input.name] = randomTensor(input.dtype, input.dims, random);
  return feeds;
}

interface MemoryMark {
  reset: boolean;
  baseline: number;
}

/** Writing "5" to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0). */
function resetPeakRss(): MemoryMark {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    const baseline = readVmHwm();
    return baseline === undefined ? { reset: false, baseline: 0 } : { reset: true, baseline };
  } catch {
    return { reset: false, baseline: 0 };
  }
}

function readPeakRss(mark: MemoryMark): PeakRss {
  const hwm = mark.reset ? readVmHwm() : undefined;
  if (hwm !== undefined) return { peakRssBytes: hwm, baselineRssBytes: mark.baseline, peakRssSource: 'vmhwm' };
  // maxRSS is in kilobytes.
  return { peakRssBytes: process.resourceUsage().maxRSS * 1024, baselineRssBytes: 0, peakRssSource: 'maxrss' };
}

function readVmHwm(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
