/**
 * Latency, throughput and peak memory of one model on ORT's CPU provider, fed seeded random inputs of
 * the model's input shape.
 *
 * Percentiles use the nearest-rank method: with n samples sorted ascending, the p-th percentile is the
 * sample at 1-based rank ceil(p/100 · n). It is always a measured value (no interpolation), so p50 ≤
 * p90 ≤ p99 ≤ max hold by construction; with 100 runs p99 is the second-slowest run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { usageError } from '../errors.js';
import type { Tensor } from '../onnx/tensor.js';
import { fixedBatchOf } from '../onnx/image-input.js';
import { Random } from '../util/random.js';
import { defaultThreads, openSession, type Optimization, type OrtModel } from './ort.js';
import { benchmarkInputs, randomTensor } from './random-input.js';

export type BenchmarkPhase = 'warmup' | 'latency' | 'throughput';

export interface BenchmarkOptions {
  /** Intra-op threads; default: the cores available to this process. */
  threads?: number;
  /** Batch of the latency runs; default 1 (or the model's fixed batch). */
  batch?: number;
  /** Untimed runs before timing; default 10. */
  warmupRuns?: number;
  /** Timed latency runs; default 100, at least 50 so that p99 means something. */
  runs?: number;
  /** Batch of the throughput phase; default 32 (or the model's fixed batch). 0 skips the phase. */
  throughputBatch?: number;
  /** Minimum length of the throughput phase (at least 3 runs); default 2 s. */
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
  /** Runs done of total per phase; in the throughput phase, elapsed and target milliseconds. */
  onProgress?(done: number, total: number, phase: BenchmarkPhase): void;
}

export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

export interface BenchmarkResult {
  latencyMs: LatencyStats;
  /** Every timed latency run in ms, ascending. */
  samplesMs: number[];
  runs: number;
  batch: number;
  threads: number;
  throughputBatch: number;
  throughputRuns: number;
  /** Images per second at throughputBatch; 0 when the phase was skipped. */
  throughputIps: number;
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

export async function benchmark(model: Uint8Array | string, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const warmupRuns = options.warmupRuns ?? 10;
  const runs = options.runs ?? 100;
  const throughputSeconds = options.throughputSeconds ?? 2;
  if (!Number.isInteger(runs) || runs < 50) throw usageError(`runs must be a whole number ≥ 50, got ${runs}`, 'percentiles need at least 50 samples');
  if (!Number.isInteger(warmupRuns) || warmupRuns < 0) throw usageError(`warmup runs must be a whole number ≥ 0, got ${warmupRuns}`);
  if (!(throughputSeconds >= 0)) throw usageError(`throughput seconds must be ≥ 0, got ${throughputSeconds}`);
  const threads = options.threads ?? defaultThreads();

  const memory = resetPeakRss();
  const session = await openSession(model, {
    threads,
    ...(options.optimization ? { optimization: options.optimization } : {}),
    ...(options.spinning !== undefined ? { spinning: options.spinning } : {}),
    ...(options.label ? { label: options.label } : {}),
  });
  try {
    const random = new Random(options.seed ?? 0);
    const batch = batchFor(session, options.batch, 1, 'batch');
    const latencyFeeds = randomFeeds(session, batch, options.inputShapes, random);
    for (let i = 0; i < warmupRuns; i++) {
      await session.run(latencyFeeds);
      options.onProgress?.(i + 1, warmupRuns, 'warmup');
    }
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await session.run(latencyFeeds);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      options.onProgress?.(i + 1, runs, 'latency');
    }
    samples.sort((a, b) => a - b);

    const throughputBatch = options.throughputBatch === 0 ? 0 : batchFor(session, options.throughputBatch, 32, 'throughput batch');
    let throughputRuns = 0;
    let throughputIps = 0;
    if (throughputBatch > 0) {
      const feeds = throughputBatch === batch ? latencyFeeds : randomFeeds(session, throughputBatch, options.inputShapes, random);
      if (feeds !== latencyFeeds) await session.run(feeds); // first run at a new shape allocates
      const targetNs = BigInt(Math.round(throughputSeconds * 1e9));
      const t0 = process.hrtime.bigint();
      let elapsed = 0n;
      while (throughputRuns < 3 || elapsed < targetNs) {
        await session.run(feeds);
        throughputRuns++;
        elapsed = process.hrtime.bigint() - t0;
        options.onProgress?.(Number(elapsed) / 1e6, throughputSeconds * 1e3, 'throughput');
      }
      throughputIps = (throughputBatch * throughputRuns) / (Number(elapsed) / 1e9);
    }

    const peak = readPeakRss(memory);
    return {
      latencyMs: latencyStats(samples),
      samplesMs: samples,
      runs,
      batch,
      threads,
      throughputBatch,
      throughputRuns,
      throughputIps,
      ...peak,
    };
  } finally {
    await session.close();
  }
}

/** Nearest-rank percentile of an ascending, non-empty list (see the module comment). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty list');
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function latencyStats(sorted: readonly number[]): LatencyStats {
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((a, v) => a + v, 0) / sorted.length,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
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

function readPeakRss(mark: MemoryMark): Pick<BenchmarkResult, 'peakRssBytes' | 'baselineRssBytes' | 'peakRssSource'> {
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
