/**
 * `slim quantize` lays its int8 Convs out for the CPU they will run on (quantize/cpu.ts,
 * quantize/pad-channels.ts): weights stored with zero point −1 for ONNX Runtime's AMX GEMM path, and an
 * RGB first Conv's quantized input padded with zero-point channels. Both are exact re-encodings of the
 * same model. QAT trains the canonical form — symmetric weights at zero point 0, no padding — and export
 * re-applies the layout, so the shipped model runs the same kernels PTQ's did.
 */
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { makeTensor, type Tensor } from '../../onnx/tensor.js';
import { padConvInputChannels, resolveCpu, retargetConvWeights, type Int8Cpu } from '../quantize/index.js';

export interface CanonicalGraph {
  graph: Graph;
  /** The CPU layout PTQ wrote (from its metadata), to re-apply at export; undefined when none was recorded. */
  cpu: Int8Cpu | undefined;
  /** With a measured layout (quantize/tune-layout.ts): the Convs PTQ put on the AMX path. */
  amxConvs?: string[];
}

export function toCanonicalLayout(qdq: Graph): CanonicalGraph {
  const g = cloneGraph(qdq);
  unpadChannels(g);
  zeroPointsToZero(g);
  const record = recordedLayout(qdq);
  return { graph: g, cpu: record.cpu, ...(record.amxConvs ? { amxConvs: record.amxConvs } : {}) };
}

/**
 * The layout `slim quantize` gives a QDQ graph for `cpu` (a no-op on a graph already in it); with
 * `amxConvs`, only those Convs take the AMX layout.
 */
export function toCpuLayout(graph: Graph, cpu: Int8Cpu, amxConvs?: readonly string[]): Graph {
  return retargetConvWeights(cpu === 'amx' ? padConvInputChannels(graph).graph : graph, cpu, amxConvs ? { only: new Set(amxConvs) } : {}).graph;
}

function recordedLayout(g: Graph): { cpu: Int8Cpu | undefined; amxConvs?: string[] } {
  try {
    const r = JSON.parse(g.metadata['slimkit.quantization'] ?? '{}') as { cpu?: unknown; amx_convs?: unknown };
    const cpu = r.cpu === 'amx' || r.cpu === 'generic' ? r.cpu : undefined;
    const amxConvs = Array.isArray(r.amx_convs) && r.amx_convs.every((c) => typeof c === 'string') ? (r.amx_convs as string[]) : undefined;
    return { cpu, ...(amxConvs ? { amxConvs } : {}) };
  } catch {
    return { cpu: undefined };
  }
}

/** The default for graphs without a record: this machine's layout, as `slim quantize --cpu auto`. */
export function exportCpu(canonical: CanonicalGraph): Int8Cpu {
  return canonical.cpu ?? resolveCpu('auto');
}

/**
 * Remove Q → Pad(channels, zero point) → DQ → Conv paddings: the Conv reads the unpadded input again and
 * its weights lose the padded input channels (which only ever multiplied zero-point inputs).
 */
function unpadChannels(g: Graph): void {
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
function zeroPointsToZero(g: Graph): void {
  const index = new GraphIndex(g);
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
    const shifted = Int8Array.from(values.data as Int8Array, (v) => v - z[0]!);
    if (shifted.some((v, i) => v !== (values.data as Int8Array)[i]! - z[0]!)) continue; // left int8
    g.initializers.set(valuesName!, makeTensor('int8', values.dims, shifted));
    g.initializers.set(zeroName!, makeTensor('int8', zeros.dims, new Int8Array(z.length)));
  }
}
