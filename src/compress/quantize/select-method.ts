/**
 * `--method auto`: calibrate once, build the int8 model of every range method from the same histograms,
 * and keep the one whose outputs stay closest to the fp32 model's on held-out images (output SQNR; no
 * labels, so no test data is touched). Which method is best depends on the model, and top-1 on 10,000
 * test images moves by less than its own noise between methods; an output comparison on a few hundred
 * images is a steadier judge (on two PyTorch-trained ResNet18s it ranked mse first, bench/quantize-vs-ort.ts).
 */
import type { Tensor } from '../../onnx/tensor.js';
import { encodeModel } from '../../onnx/io.js';
import { openSession } from '../../runtime/ort.js';
import { forExactScoring } from './unsigned-layout.js';
import { int8KernelsSaturate } from '../../util/cpu-flags.js';
import type { ActivationCollector, FeedSource } from './calibrate/index.js';
import { buildQuantized, type PreparedGraph, type QuantizedResult, type StaticOptions } from './quantize.js';
import { SQNR } from './sqnr.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from './types.js';

/** Held-out images `--method auto` compares the methods on. */
export const AUTO_HELD_OUT_IMAGES = 256;

export interface MethodScore {
  method: CalibrationMethod;
  /** SQNR of the int8 model's outputs against fp32 over the held-out images, in dB. */
  outputSqnrDb: number;
}

export interface MethodChoice {
  method: CalibrationMethod;
  scores: MethodScore[];
  result: QuantizedResult;
}

/** Every output of `graph` on every feed, in order (held-out sets are a few hundred images). */
async function outputsOf(bytes: Uint8Array, feeds: readonly Record<string, Tensor>[], threads: number | undefined, label: string): Promise<Record<string, Tensor>[]> {
  const session = await openSession(bytes, { ...(threads ? { threads } : {}), label });
  try {
    const out: Record<string, Tensor>[] = [];
    for (const feed of feeds) out.push(await session.run(feed));
    return out;
  } finally {
    await session.close();
  }
}

export async function selectCalibrationMethod(
  prepared: PreparedGraph,
  collector: ActivationCollector,
  options: StaticOptions,
  heldOut: FeedSource,
  o: { threads?: number; methods?: readonly CalibrationMethod[]; onScore?(score: MethodScore): void } = {},
): Promise<MethodChoice> {
  const feeds: Record<string, Tensor>[] = [];
  for await (const feed of heldOut) feeds.push(feed);
  if (feeds.length === 0) throw new Error('selectCalibrationMethod needs held-out images');
  const reference = await outputsOf(encodeModel(prepared.graph).model, feeds, o.threads, 'fp32 model');
  let best: { score: MethodScore; result: QuantizedResult } | undefined;
  const scores: MethodScore[] = [];
  for (const method of o.methods ?? CALIBRATION_METHODS) {
    const result = buildQuantized(prepared, collector, { ...options, calibration: { ...options.calibration, method } });
    const test = await outputsOf(encodeModel(forExactScoring(result.graph)).model, feeds, o.threads, `int8 model (${method})`);
    const state = SQNR.create();
    // Float outputs only: an argmax or top-k index output beside the scores is int64 (and exact or not, no SQNR).
    reference.forEach((ref, k) => {
      for (const [name, t] of Object.entries(ref)) if (t.dtype === 'float32') state.add(t.data as Float32Array, test[k]![name]!.data as Float32Array);
    });
    const score = { method, outputSqnrDb: state.value() };
    scores.push(score);
    o.onScore?.(score);
    if (!best || score.outputSqnrDb > best.score.outputSqnrDb) best = { score, result };
  }
  return { method: best!.score.method, scores, result: best!.result };
}

/** Output SQNR per method, in dB to 3 decimals: what the CLI's JSON and the pipeline's manifest record. */
export function scoresByMethod(choice: MethodChoice): Record<string, number> {
  return Object.fromEntries(choice.scores.map((s) => [s.method, Number(s.outputSqnrDb.toFixed(3))]));
}

/** One log line: the method kept and every score. */
export function describeChoice(choice: MethodChoice, heldOutImages: number): string {
  // Scored as forExactScoring runs the model: where this CPU's int8 sums saturate, not as it runs here.
  const exact = int8KernelsSaturate() ? " on exact int8 kernels (this CPU's saturate: the written model scores lower here)" : '';
  return `calibration method: ${choice.method} (output SQNR vs fp32 on ${heldOutImages} held-out images${exact}: ${choice.scores.map((s) => `${s.method} ${s.outputSqnrDb.toFixed(1)} dB`).join(', ')})`;
}
