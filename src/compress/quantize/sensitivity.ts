/**
 * Per-layer sensitivity: quantize one layer (node unit) at a time, everything else float, and measure
 * how far the model output moves from the float model's on the same images: SQNR of the first output
 * (dB, higher = less sensitive) and top-1 agreement (share of images whose argmax is unchanged). Uses
 * the ranges of one calibration; no labels needed.
 */
import type { Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { openSession } from '../../runtime/ort.js';
import { forExactScoring } from './unsigned-layout.js';
import type { ActivationCollector, FeedSource } from './calibrate/index.js';
import { buildQuantized, type PreparedGraph, type StaticOptions } from './quantize.js';
import { planQuantization, type QuantPlan } from './mark.js';
import { SQNR, type ErrorMetric, type MetricState } from './sqnr.js';

/** Images a sensitivity scan runs (`slim quantize --report` / `--max-drop`, the pipeline's scan): a sample of the calibration set. */
export const SENSITIVITY_IMAGES = 128;

export interface LayerSensitivity {
  layer: string;
  opType: string;
  /** The metric (default SQNR, dB) of the model output with only this layer quantized. */
  score: number;
  /** Share of images whose top-1 class is the float model's. */
  agreement: number;
}

export interface SensitivityOptions {
  metric?: ErrorMetric;
  threads?: number;
  onProgress?(done: number, total: number): void;
}

/** The nodes that quantization acts on (pass-through ops alone change nothing), in graph order. */
export function quantizableLayers(prepared: PreparedGraph, options: StaticOptions): { layer: string; opType: string }[] {
  const plan = planQuantization(prepared.graph, prepared.facts, { ...options, exclude: [] });
  const opTypes = new Map(prepared.graph.nodes.map((n) => [n.name || `${n.opType}:${n.outputs[0]}`, n.opType]));
  return [...plan.units]
    .filter(([, u]) => [...u.inputs, ...u.outputs].some((m) => m?.role === 'activation' || m?.role === 'weight'))
    .map(([layer]) => ({ layer, opType: opTypes.get(layer) ?? '?' }));
}

/** Output of the first graph output for every feed, kept (small: batch × classes per run). */
async function outputsOf(graph: Graph, feeds: FeedSource, threads?: number): Promise<Float32Array[]> {
  const session = await openSession(encodeModel(graph).model, { ...(threads ? { threads } : {}), label: `graph '${graph.name}'` });
  const name = graph.outputs[0]!.name;
  const out: Float32Array[] = [];
  try {
    for await (const feed of feeds) out.push((await session.run(feed, { outputs: [name] }))[name]!.data as Float32Array);
  } finally {
    await session.close();
  }
  return out;
}

function argmaxAgreement(reference: Float32Array, test: Float32Array, classes: number): number {
  let same = 0;
  for (let r = 0; r < reference.length / classes; r++) {
    let a = 0;
    let b = 0;
    for (let j = 1; j < classes; j++) {
      if (reference[r * classes + j]! > reference[r * classes + a]!) a = j;
      if (test[r * classes + j]! > test[r * classes + b]!) b = j;
    }
    if (a === b) same++;
  }
  return same;
}

export async function layerSensitivity(
  prepared: PreparedGraph,
  collector: ActivationCollector,
  options: StaticOptions,
  feeds: FeedSource,
  extra: SensitivityOptions = {},
): Promise<LayerSensitivity[]> {
  const metric = extra.metric ?? SQNR;
  const reference = await outputsOf(prepared.graph, feeds, extra.threads);
  const outputShape = prepared.facts.types.get(prepared.graph.outputs[0]!.name)?.shape;
  const classes = typeof outputShape?.[1] === 'number' ? outputShape[1] : 1;
  const rows = reference.reduce((a, r) => a + r.length / classes, 0);
  const layers = quantizableLayers(prepared, options);
  const results: LayerSensitivity[] = [];
  for (const [k, { layer, opType }] of layers.entries()) {
    const { graph } = buildQuantized(prepared, collector, options, { only: new Set([layer]), exclude: [] });
    const outputs = await outputsOf(forExactScoring(graph), feeds, extra.threads);
    const state: MetricState = metric.create();
    let same = 0;
    outputs.forEach((o, i) => {
      state.add(reference[i]!, o);
      same += argmaxAgreement(reference[i]!, o, classes);
    });
    results.push({ layer, opType, score: state.value(), agreement: rows > 0 ? same / rows : 1 });
    extra.onProgress?.(k + 1, layers.length);
  }
  return results;
}

/**
 * Most sensitive first: lowest top-1 agreement, then lowest SQNR (highest error). Agreement comes first
 * because mixed precision targets accuracy, and an output SQNR can look fine while the classes that
 * matter flip (logits dominated by one large class score).
 */
/**
 * For --max-drop: the layers `plan` quantizes, most sensitive first. Layers already float (--exclude,
 * --keep-first, the readers kept float with them) are not candidates: keeping one float changes nothing.
 */
export function quantizedBySensitivity(layers: readonly LayerSensitivity[], plan: Pick<QuantPlan, 'units'>): string[] {
  return rankBySensitivity(layers).filter((layer) => plan.units.has(layer));
}

export function rankBySensitivity(layers: readonly LayerSensitivity[], metric: ErrorMetric = SQNR): string[] {
  const byScore = (a: LayerSensitivity, b: LayerSensitivity): number => (metric.higherIsBetter ? a.score - b.score : b.score - a.score);
  return [...layers].sort((a, b) => a.agreement - b.agreement || byScore(a, b)).map((l) => l.layer);
}
