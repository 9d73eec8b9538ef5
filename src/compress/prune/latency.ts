/**
 * Batch-1 latency for pruning decisions and reports. Models compared in one report are timed in turns
 * (runtime/benchmark-turns.ts), so that load from other processes, which comes and goes, falls on all
 * alike, and put on one scale by their per-round ratios (report/latency-ratio.ts): the first model's
 * p50, the others' that times their median per-round ratio to it.
 */
import type { Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { openTimer, timingPlan } from '../../runtime/benchmark.js';
import { timeOpening } from '../../runtime/benchmark-turns.js';
import { comparableLatencies, latencyRatio } from '../../report/latency-ratio.js';

export interface LatencyOptions {
  threads?: number;
  /** Timed runs per model (≥ 50); default 180. */
  runs?: number;
  /** Full input shapes where the model leaves dims free (a free image height and width). */
  inputShapes?: Record<string, number[]>;
}

/** Batch-1 latency (ms) of each model, timed in turns in this process, on the first one's scale. */
export async function compareLatency(models: readonly Uint8Array[], options: LatencyOptions = {}): Promise<number[]> {
  return (await compareLatencySpread(models, options)).ms;
}

/**
 * compareLatency with each model's per-round ratio to the first: its quartiles (what `slim bench` gives
 * beside its ratios), undefined for the first. A single ratio hid how far a re-measure may move.
 */
export async function compareLatencySpread(models: readonly Uint8Array[], options: LatencyOptions = {}): Promise<{ ms: number[]; quartiles: ([number, number] | undefined)[] }> {
  const plan = timingPlan({ runs: options.runs ?? 180, warmupRuns: 5, throughputSeconds: 0 });
  const timerOptions = {
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    throughputBatch: 0,
    ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
  };
  const results = await timeOpening(models.map((bytes) => openTimer(bytes, timerOptions)), plan);
  const rows = results.map((r) => ({ latency_ms: r.latencyMs, turn_p50_ms: r.turnP50Ms }));
  const scale = comparableLatencies(rows);
  return { ms: rows.map((r) => scale.get(r)!), quartiles: rows.map((r, i) => (i === 0 ? undefined : latencyRatio(r, rows[0]!).spread)) };
}

/**
 * A measureLatency for pruneStructured. The first graph it measures (the model before pruning) is the
 * reference: every later graph is timed in turns with it and given on the scale of that first
 * measurement (its per-round ratio to the reference, times the reference's first p50), so load that
 * comes or goes during a long search does not move candidates against the target.
 */
export function latencyMeter(options: LatencyOptions = {}): (graph: Graph) => Promise<number> {
  let reference: { bytes: Uint8Array; ms: number } | undefined;
  return async (graph) => {
    const bytes = encodeModel(graph).model;
    if (!reference) {
      const [ms] = await compareLatency([bytes], { runs: 60, ...options });
      reference = { bytes, ms: ms! };
      return ms!;
    }
    const [now, candidate] = await compareLatency([reference.bytes, bytes], { runs: 60, ...options });
    return reference.ms * (candidate! / now!);
  };
}
