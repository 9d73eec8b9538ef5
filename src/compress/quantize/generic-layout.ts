/**
 * Back from the AMX or AVX2 layout (cpu.ts, pad-channels.ts, unsigned-layout.ts) to the generic one:
 * uint8 weights back to int8, an RGB first Conv's padded
 * input channels removed again, and int8 Conv weights stored at a non-zero zero point shifted back to
 * zero point 0. Exact, like the way there. QAT trains this canonical form; `slim deploy` writes it for
 * arm64 and the web, whose ORT kernels want symmetric weights (ConvSym / dot-product) and gain nothing
 * from the padding.
 */
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { makeTensor, type Tensor } from '../../onnx/tensor.js';
import { toSignedWeights } from './unsigned-layout.js';

export interface GenericLayoutResult {
  graph: Graph;
  /** Whether anything was re-laid (false: the graph is returned as it was). */
  changed: boolean;
}

export function toGenericLayout(graph: Graph): GenericLayoutResult {
  // Weights --cpu avx2 stored as uint8 first (unsigned-layout.ts); the steps below edit `g` in place.
  const signed = toSignedWeights(cloneGraph(graph));
  const g = signed.graph;
  const changed = signed.changed.length + unpadChannels(g) + zeroPointsToZero(g) > 0;
  if (!changed) return { graph, changed };
  const record = g.metadata['slimkit.quantization'];
  if (record) {
    try {
      const { amx_convs: _a, tuned_threads: _t, ...rest } = JSON.parse(record) as Record<string, unknown>;
      g.metadata = { ...g.metadata, 'slimkit.quantization': JSON.stringify({ ...rest, cpu: 'generic' }) };
    } catch {
      // A record slimkit cannot read stays as it is.
    }
  }
  return { graph: g, changed };
}

/**
 * Remove Q → Pad(channels, zero point) → DQ → Conv paddings: the Conv reads the unpadded input again and
 * its weights lose the padded input channels (which only ever multiplied zero-point inputs).
 */
function unpadChannels(g: Graph): number {
  const index = new GraphIndex(g);
  const doomed = new Set<Node>();
  for (const pad of g.nodes) {
    if (pad.opType !== 'Pad') continue;
    const [x, padsName, value] = pad.inputs;
    const q = index.producer.get(x ?? '');
    const readers = index.consumersOf(pad.outputs[0]!);
    const dq = readers[0];
    const conv = dq ? index.consumersOf(dq.outputs[0]!)[0] : undefined;
    if (q?.opType !== 'QuantizeLinear' || readers.length !== 1 || dq?.opType !== 'DequantizeLinear' || conv?.opType !== 'Conv') continue;
    if (!value || value !== q.inputs[2] || value !== dq.inputs[2]) continue;
    const pads = g.initializers.get(padsName ?? '');
    const weightDq = index.producer.get(conv.inputs[1] ?? '');
    const weights = weightDq && g.initializers.get(weightDq.inputs[0] ?? '');
    if (!pads || !weightDq || weightDq.opType !== 'DequantizeLinear' || weights?.dtype !== 'int8') continue;
    const p = Array.from(pads.data as BigInt64Array, Number);
    const rank = p.length / 2;
    const extra = p[rank + 1]!;
    // Only a padding at the end of the channel axis.
    if (extra <= 0 || p.some((v, i) => i !== rank + 1 && v !== 0)) continue;
    const zero = Number(g.initializers.get(weightDq.inputs[2] ?? '')?.data[0] ?? 0);
    const sliced = dropInputChannels(weights as Tensor<'int8'>, extra, zero);
    if (!sliced) continue;
    g.initializers.set(weightDq.inputs[0]!, sliced);
    dq.inputs = [pad.inputs[0]!, ...dq.inputs.slice(1)];
    doomed.add(pad);
    if (index.consumersOf(padsName!).length === 1) g.initializers.delete(padsName!);
  }
  g.nodes = g.nodes.filter((n) => !doomed.has(n));
  return doomed.size;
}

/** [m, c + extra, ...k] → [m, c, ...k], when the dropped channels hold only the zero point. */
function dropInputChannels(w: Tensor<'int8'>, extra: number, zero: number): Tensor<'int8'> | undefined {
  const [m, cPadded, ...kernel] = w.dims as number[];
  const c = cPadded! - extra;
  const inner = kernel.reduce((a, b) => a * b, 1);
  const src = w.data;
  const out = new Int8Array(m! * c * inner);
  for (let o = 0; o < m!; o++) {
    const row = src.subarray(o * cPadded! * inner, (o + 1) * cPadded! * inner);
    if (row.subarray(c * inner).some((v) => v !== zero)) return undefined;
    out.set(row.subarray(0, c * inner), o * c * inner);
  }
  return makeTensor('int8', [m!, c, ...kernel], out);
}

/** int8 Conv weights stored at one non-zero zero point z go back to zero point 0 (values − z). */
function zeroPointsToZero(g: Graph): number {
  const index = new GraphIndex(g);
  let shifted = 0;
  for (const conv of g.nodes) {
    if (conv.opType !== 'Conv') continue;
    const dq = index.producer.get(conv.inputs[1] ?? '');
    if (dq?.opType !== 'DequantizeLinear') continue;
    const [valuesName, , zeroName] = dq.inputs;
    const values = g.initializers.get(valuesName ?? '');
    const zeros = g.initializers.get(zeroName ?? '');
    if (values?.dtype !== 'int8' || zeros?.dtype !== 'int8') continue;
    const z = zeros.data as Int8Array;
    if (z.length === 0 || z[0] === 0 || !z.every((v) => v === z[0])) continue;
    if (index.consumersOf(valuesName!).length !== 1 || index.consumersOf(zeroName!).length !== 1) continue;
    const values0 = Int8Array.from(values.data as Int8Array, (v) => v - z[0]!);
    if (values0.some((v, i) => v !== (values.data as Int8Array)[i]! - z[0]!)) continue; // left int8
    g.initializers.set(valuesName!, makeTensor('int8', values.dims, values0));
    g.initializers.set(zeroName!, makeTensor('int8', zeros.dims, new Int8Array(z.length)));
    shifted++;
  }
  return shifted;
}
