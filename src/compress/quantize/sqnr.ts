/**
 * Where does a quantized model lose precision? Like ONNX Runtime's qdq_loss_debug, as a chain of small
 * functions with a pluggable error metric:
 *   - weights: each float weight vs its dequantized int8 values;
 *   - activations, local: each float tensor vs its own quantize → dequantize (the error of its range);
 *   - activations, accumulated: each float tensor vs the same tensor in the int8 model, running on the
 *     same input (everything upstream included).
 * Statistics are accumulated per batch, so memory does not grow with the number of images.
 */
import { dataInputs, type Graph, type Node } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import type { Tensor } from '../../onnx/tensor.js';
import { openSession } from '../../runtime/ort.js';
import { forExactScoring } from './unsigned-layout.js';
import { addTaps, type FeedSource } from './calibrate/index.js';
import { dequantizeArray, fakeQuantize, sqnrDb } from './math.js';
import type { QuantizedResult } from './quantize.js';

/** One running comparison of a reference stream with a test stream. */
export interface MetricState {
  add(reference: ArrayLike<number>, test: ArrayLike<number>): void;
  value(): number;
}

export interface ErrorMetric {
  name: string;
  unit: string;
  /** True when a larger value means a closer match (SQNR, cosine). */
  higherIsBetter: boolean;
  create(): MetricState;
}

/** 10·log10(Σref² / Σ(ref − test)²), in dB; 30 dB ≈ 3 % relative RMS error. */
export const SQNR: ErrorMetric = {
  name: 'sqnr',
  unit: 'dB',
  higherIsBetter: true,
  create() {
    let signal = 0;
    let noise = 0;
    return {
      add(ref, test) {
        for (let i = 0; i < ref.length; i++) {
          const r = ref[i]!;
          const d = r - test[i]!;
          signal += r * r;
          noise += d * d;
        }
      },
      value: () => sqnrDb(signal, noise),
    };
  },
};

export const COSINE: ErrorMetric = {
  name: 'cosine',
  unit: '',
  higherIsBetter: true,
  create() {
    let dot = 0;
    let a = 0;
    let b = 0;
    return {
      add(ref, test) {
        for (let i = 0; i < ref.length; i++) {
          dot += ref[i]! * test[i]!;
          a += ref[i]! * ref[i]!;
          b += test[i]! * test[i]!;
        }
      },
      value: () => (a === 0 || b === 0 ? (a === b ? 1 : 0) : dot / Math.sqrt(a * b)),
    };
  },
};

export const METRICS: Record<string, ErrorMetric> = { sqnr: SQNR, cosine: COSINE };

export interface TensorError {
  tensor: string;
  /** Op type of the node that produces it (or 'input' / 'weight'). */
  producer: string;
  local: number;
  /** Activations only. */
  accumulated?: number;
}

/** Each quantized weight against its dequantized values. */
export function weightErrors(result: QuantizedResult, metric: ErrorMetric = SQNR): TensorError[] {
  const out: TensorError[] = [];
  for (const [name, p] of result.params.tensors) {
    if (p.kind !== 'weight') continue;
    const w = result.float.initializers.get(name);
    if (w?.dtype !== 'float32') continue;
    const state = metric.create();
    state.add(w.data as Float32Array, dequantizeArray(p.values, p.dims, p.axis, p.params));
    out.push({ tensor: name, producer: 'weight', local: state.value() });
  }
  return out;
}

/** A DequantizeLinear per quantized activation, as an extra output of the int8 graph: `tensor → debug output`. */
export function addDequantizedTaps(quantized: Graph, tensors: Iterable<string>): { graph: Graph; taps: Map<string, string> } {
  const quantizers = new Map<string, Node>();
  for (const n of quantized.nodes) if (n.opType === 'QuantizeLinear' && n.inputs[0]) quantizers.set(n.inputs[0], n);
  const taps = new Map<string, string>();
  const extra: Node[] = [];
  for (const t of tensors) {
    const q = quantizers.get(t);
    if (!q) continue;
    const output = `${t}__int8_debug`;
    extra.push({ name: `${t}__DequantizeLinear_debug`, opType: 'DequantizeLinear', domain: '', inputs: [q.outputs[0]!, q.inputs[1]!, q.inputs[2] ?? ''], outputs: [output], attributes: {} });
    taps.set(t, output);
  }
  const graph: Graph = {
    ...quantized,
    nodes: [...quantized.nodes, ...extra],
    outputs: [...quantized.outputs, ...[...taps.values()].map((name) => ({ name, dtype: 'float32' as const }))],
  };
  return { graph, taps };
}

export interface ActivationErrorOptions {
  metric?: ErrorMetric;
  threads?: number;
  onProgress?(samples: number): void;
}

/** Local and accumulated error of every quantized activation, over `feeds`. */
export async function activationErrors(result: QuantizedResult, feeds: FeedSource, options: ActivationErrorOptions = {}): Promise<TensorError[]> {
  const metric = options.metric ?? SQNR;
  // Against the model as given, not the bias-corrected float graph (QuantizedResult.reference).
  const floatGraph = result.reference;
  const facts = inferShapes(floatGraph);
  const inputs = new Set(dataInputs(floatGraph).map((v) => v.name));
  const tensors = [...result.plan.tensors].filter(([name, t]) => (t.kind === 'activation' || t.kind === 'same') && facts.types.has(name)).map(([name]) => name);
  const { graph: debugGraph, taps } = addDequantizedTaps(result.graph, tensors);
  const floatOutputs = tensors.filter((t) => !inputs.has(t));
  const sessionOptions = options.threads ? { threads: options.threads } : {};
  const floatSession = await openSession(encodeModel(addTaps(floatGraph, floatOutputs, facts)).model, { ...sessionOptions, label: 'float graph with taps' });
  const intSession = await openSession(encodeModel(forExactScoring(debugGraph)).model, { ...sessionOptions, label: 'int8 graph with taps' });
  const producers = new Map<string, string>();
  for (const n of floatGraph.nodes) for (const o of n.outputs) producers.set(o, n.opType);
  const states = new Map(tensors.map((t) => [t, { local: metric.create(), accumulated: metric.create() }]));
  let samples = 0;
  try {
    for await (const feed of feeds) {
      const ref: Record<string, Tensor> = { ...feed, ...(await floatSession.run(feed, { outputs: floatOutputs })) };
      const test = await intSession.run(feed, { outputs: [...taps.values()] });
      for (const t of tensors) {
        const r = ref[t]?.data as Float32Array | undefined;
        const p = result.params.tensors.get(t);
        const s = states.get(t)!;
        if (!r || p?.kind !== 'activation') continue;
        const fq = new Float32Array(r.length);
        for (let i = 0; i < r.length; i++) fq[i] = fakeQuantize(r[i]!, p.scale, p.zeroPoint, p.qrange);
        s.local.add(r, fq);
        const tap = taps.get(t);
        const q = tap ? (test[tap]?.data as Float32Array | undefined) : undefined;
        if (q) s.accumulated.add(r, q);
      }
      samples += Object.values(feed)[0]?.dims[0] ?? 1;
      options.onProgress?.(samples);
    }
  } finally {
    await floatSession.close();
    await intSession.close();
  }
  return tensors.map((t) => ({
    tensor: t,
    producer: inputs.has(t) ? 'input' : (producers.get(t) ?? '?'),
    local: states.get(t)!.local.value(),
    ...(taps.has(t) ? { accumulated: states.get(t)!.accumulated.value() } : {}),
  }));
}
