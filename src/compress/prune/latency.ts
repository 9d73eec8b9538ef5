/**
 * Batch-1 latency for pruning decisions and reports. Models compared in one report are timed in turns
 * (runtime/benchmark-turns.ts), so that load from other processes, which comes and goes, falls on all
 * alike; each is summarized by the p50 of all its runs.
 */
import type { Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { openTimer, timingPlan, type ModelTimer } from '../../runtime/benchmark.js';
import { timeInTurns } from '../../runtime/benchmark-turns.js';

export interface LatencyOptions {
  threads?: number;
  /** Timed runs per model (≥ 50); default 180. */
  runs?: number;
  /** Full input shapes where the model leaves dims free (a free image height and width). */
  inputShapes?: Record<string, number[]>;
}

/** p50 batch-1 latency (ms) of each model, timed in turns in this process. */
export async function compareLatency(models: readonly Uint8Array[], options: LatencyOptions = {}): Promise<number[]> {
  const plan = timingPlan({ runs: options.runs ?? 180, warmupRuns: 5, throughputSeconds: 0 });
  const timers: ModelTimer[] = [];
  try {
    for (const bytes of models) {
      timers.push(await openTimer(bytes, {
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        throughputBatch: 0,
        ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
      }));
    }
  } catch (e) {
    await Promise.all(timers.map((t) => t.close()));
    throw e;
  }
  return (await timeInTurns(timers, plan)).map((r) => r.latencyMs.p50);
}

/** A measureLatency for pruneStructured: one graph's batch-1 p50 latency. */
export function latencyMeter(options: LatencyOptions = {}): (graph: Graph) => Promise<number> {
  return async (graph) => (await compareLatency([encodeModel(graph).model], { runs: 60, ...options }))[0]!;
}
