/**
 * Several models timed in turns. Each model's latency runs are cut into blocks of LATENCY_BLOCK runs and
 * the models take turns block by block (A B C, then B C A, …), and the throughput phase likewise in
 * THROUGHPUT_TURNS slices. Load from other processes comes and goes: timed one model after another, a
 * busy minute falls on one model and makes it look slower than the next; timed in turns, it falls on
 * all alike, so "N× faster" compares the models and not the moments they ran. The order rotates, so
 * that each model takes every position in the round in turn (none always goes first, right after the
 * previous round's last). With one model this is a plain warm-up, runs, throughput.
 */
import type { BenchmarkPhase, ModelTimer, TimedResult } from './benchmark.js';
import { latencyStats, percentile } from './percentiles.js';
import { watchOtherLoad } from './cpu-load.js';

/** Timed latency runs per turn: 100 runs are 10 turns. */
export const LATENCY_BLOCK = 10;
/** Slices of the throughput phase per model. */
export const THROUGHPUT_TURNS = 4;

/**
 * `runs: 'auto'`: at least `min` timed runs, more for fast models — enough for about `seconds` of the
 * slowest model's runs (from its warm-up), at most `max`. Ten rounds of turns leave wide quartiles on
 * a sub-millisecond model; a hundred cost it a fraction of a second.
 */
export const AUTO_RUNS = { min: 100, max: 1000, seconds: 2 };

export type RunCount = number | 'auto';

/** The timed runs `auto` asks for when the slowest model's run takes `slowestMs`. */
export function autoRuns(slowestMs: number | undefined): number {
  if (!(slowestMs !== undefined && slowestMs > 0)) return AUTO_RUNS.min;
  const wanted = Math.ceil((AUTO_RUNS.seconds * 1000) / slowestMs / LATENCY_BLOCK) * LATENCY_BLOCK;
  return Math.min(AUTO_RUNS.max, Math.max(AUTO_RUNS.min, wanted));
}

export interface TurnsOptions {
  warmupRuns: number;
  runs: RunCount;
  throughputSeconds: number;
  onProgress?(done: number, total: number, phase: BenchmarkPhase): void;
}

/** Rounds in which each model gets one turn: model order for round r. */
function rotation(count: number, round: number): number[] {
  return Array.from({ length: count }, (_, i) => (i + round) % count);
}

/**
 * Times the timers being opened, once all are open; when one fails to open, closes the others and
 * throws its error. Results in the given order.
 */
export async function timeOpening<Finish>(opening: readonly Promise<ModelTimer<Finish>>[], options: TurnsOptions): Promise<(TimedResult & Finish)[]> {
  const settled = await Promise.allSettled(opening);
  const timers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(timers.map((t) => t.close()));
    throw failed.reason;
  }
  return timeInTurns(timers, options);
}

/** Times every timer in turns and finishes (closes) them all, also on an error. Results in timer order. */
export async function timeInTurns<Finish>(timers: readonly ModelTimer<Finish>[], options: TurnsOptions): Promise<(TimedResult & Finish)[]> {
  const { warmupRuns, throughputSeconds, onProgress } = options;
  const n = timers.length;
  // With one model nothing runs between its turns: no untimed run is needed to take the machine back.
  const rewarm = n > 1;
  try {
    let slowestMs: number | undefined;
    for (const [i, timer] of timers.entries()) {
      // The first run sets ORT up (6.4 ms against a steady 0.34 for a small int8 model): `auto` sizes
      // itself from the runs after it.
      const first = warmupRuns >= 2 ? 1 : 0;
      if (first) await timer.warmup(first);
      const started = performance.now();
      await timer.warmup(warmupRuns - first);
      if (warmupRuns > 0) slowestMs = Math.max(slowestMs ?? 0, (performance.now() - started) / (warmupRuns - first));
      onProgress?.(i + 1, n, 'warmup');
    }
    const runs = options.runs === 'auto' ? autoRuns(slowestMs) : options.runs;
    // From the first timed run to the last, while every timed process is still open.
    const stopWatch = watchOtherLoad();

    const samples = timers.map((): number[] => []);
    const turnP50s = timers.map((): number[] => []);
    const rounds = Math.ceil(runs / LATENCY_BLOCK);
    let timed = 0;
    for (let round = 0; round < rounds; round++) {
      const block = Math.min(LATENCY_BLOCK, runs - round * LATENCY_BLOCK);
      for (const i of rotation(n, round)) {
        const turn = await timers[i]!.timeRuns(block, rewarm);
        // Its runtime's idle threads spin for a while after a run: the next model's turn waits them out.
        if (rewarm) await timers[i]!.quiesce();
        samples[i]!.push(...turn);
        turnP50s[i]!.push(percentile([...turn].sort((a, b) => a - b), 50));
        timed += block;
        onProgress?.(timed, runs * n, 'latency');
      }
    }

    const throughput = timers.map(() => ({ runs: 0, seconds: 0 }));
    const withThroughput = timers.filter((t) => t.throughputBatch > 0).length;
    let turns = 0;
    for (let round = 0; round < THROUGHPUT_TURNS && withThroughput > 0; round++) {
      for (const i of rotation(n, round)) {
        if (timers[i]!.throughputBatch === 0) continue;
        const slice = await timers[i]!.timeThroughput(throughputSeconds / THROUGHPUT_TURNS, rewarm);
        if (rewarm) await timers[i]!.quiesce();
        throughput[i]!.runs += slice.runs;
        throughput[i]!.seconds += slice.seconds;
        onProgress?.(++turns, THROUGHPUT_TURNS * withThroughput, 'throughput');
      }
    }

    const otherLoad = stopWatch();
    const results: (TimedResult & Finish)[] = [];
    for (const [i, timer] of timers.entries()) {
      const sorted = [...samples[i]!].sort((a, b) => a - b);
      const t = throughput[i]!;
      results.push({
        latencyMs: latencyStats(sorted),
        samplesMs: sorted,
        turnP50Ms: turnP50s[i]!,
        runs,
        batch: timer.batch,
        threads: timer.threads,
        throughputBatch: timer.throughputBatch,
        throughputRuns: t.runs,
        throughputIps: t.runs > 0 ? (timer.throughputBatch * t.runs) / t.seconds : 0,
        ...(otherLoad ? { otherLoad } : {}),
        ...(await timer.finish()),
      });
    }
    return results;
  } finally {
    await Promise.all(timers.map((t) => t.close().catch(() => undefined)));
  }
}

export interface IdleWait {
  /** Between two readings of the counter. */
  intervalMs: number;
  /** An interval adding less than this (in the counter's unit) is idle. */
  idleBelow: number;
  /** Returns after this long whether or not the runtime went idle. */
  limitMs: number;
  /** Waited instead when the counter cannot be read. */
  fallbackMs: number;
}

/**
 * After a turn, before the next model's: returns once a CPU-time counter (a process's, or its
 * descendants') stops rising — idle runtime threads spin on after the last run and would take CPUs from
 * the next model's turn. The host's ONNX Runtime and the browser's WebAssembly pool each pass their counter.
 */
export async function waitUntilIdle(cpuTime: () => number | undefined, o: IdleWait): Promise<void> {
  const deadline = performance.now() + o.limitMs;
  let last = cpuTime();
  if (last === undefined) return new Promise((r) => setTimeout(r, o.fallbackMs));
  for (;;) {
    await new Promise((r) => setTimeout(r, o.intervalMs));
    const now: number = cpuTime() ?? last;
    if (now - last < o.idleBelow || performance.now() > deadline) return;
    last = now;
  }
}
