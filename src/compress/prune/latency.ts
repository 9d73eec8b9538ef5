/**
 * Batch-1 latency for pruning decisions and reports. Models compared in one report are measured in
 * alternating rounds (A B A B …) and summarized by the median of their per-round p50s, so that load
 * from other processes, which comes and goes, falls on both alike.
 */
import type { Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { benchmark } from '../../runtime/benchmark.js';

export interface LatencyOptions {
  threads?: number;
  /** Timed runs per round (≥ 50); default 60. */
  runs?: number;
  /** Rounds per model; default 3. */
  rounds?: number;
  /** Full input shapes where the model leaves dims free (a free image height and width). */
  inputShapes?: Record<string, number[]>;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median p50 (ms) of each model over interleaved rounds. */
export async function compareLatency(models: readonly Uint8Array[], options: LatencyOptions = {}): Promise<number[]> {
  const samples = models.map((): number[] => []);
  for (let r = 0; r < (options.rounds ?? 3); r++) {
    for (const [i, bytes] of models.entries()) {
      const b = await benchmark(bytes, {
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        runs: Math.max(50, options.runs ?? 60),
        warmupRuns: 5,
        throughputBatch: 0,
        ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
      });
      samples[i]!.push(b.latencyMs.p50);
    }
  }
  return samples.map(median);
}

/** A measureLatency for pruneStructured: one graph's median batch-1 latency. */
export function latencyMeter(options: LatencyOptions = {}): (graph: Graph) => Promise<number> {
  return async (graph) => (await compareLatency([encodeModel(graph).model], { rounds: 1, ...options }))[0]!;
}
