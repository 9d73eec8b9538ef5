/**
 * The int8 layout for x64 CPUs with AVX2 but no VNNI (`--cpu avx2`). There ONNX Runtime multiplies u8
 * activations by s8 weights with vpmaddubsw, which adds each pair of products in 16 bits and saturates
 * (255·127·2 > 32767): a ResNet18-CIFAR int8 model's logits were 0.149 off the exact ones on an AVX2-only
 * EPYC. With uint8 weights ORT takes its u8×u8 kernels instead, which widen to 16 bits before multiplying
 * and are exact — the same logits as arm64 and the browser, bit for bit — at 1.32× the time of the
 * saturating ones (ResNet18-CIFAR width 1, batch 1, 1 thread: 9.16 against 6.95 ms; fp32 14.76 ms;
 * bench/quantize-latency.ts). Symmetric int8 weights q at zero point z are stored as q + 128
 * at z + 128: DequantizeLinear gives the same floats, so it is the same model; `--reduce-range` (7-bit
 * weights) is the other way out, and costs accuracy everywhere.
 */
import { cloneGraph, GraphIndex, type Graph } from '../../onnx/graph.js';
import { makeTensor } from '../../onnx/tensor.js';
import { int8KernelsSaturate } from '../../util/cpu-flags.js';

/** Layers whose constant weight input (any slot but the first, the activation) a QLinear / integer kernel reads. */
const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);
/** uint8 weight = int8 weight + this, at zero point + this. */
export const UNSIGNED_OFFSET = 128;

/** int8 weights (DequantizeLinear of an int8 initializer into a weighted layer) stored as uint8 + 128. */
export function toUnsignedWeights(graph: Graph): { graph: Graph; changed: string[] } {
  return relay(graph, 'int8');
}

/**
 * A QDQ graph as slimkit's own measurements run it: on an x64 CPU whose int8 sums saturate
 * (int8KernelsSaturate) with its weights as uint8 — the same model on exact kernels — so that the range
 * method `auto` picks, the layer sensitivities and --max-drop's search judge the model, not this CPU (all
 * four methods scored 14.2 dB alike on an AVX2-only EPYC, against 37.8–38.7 dB exactly).
 */
export function forExactScoring(graph: Graph): Graph {
  return int8KernelsSaturate() ? toUnsignedWeights(graph).graph : graph;
}

/** Weights stored as uint8 at zero point 128 (toUnsignedWeights) back to int8 at zero point 0. */
export function toSignedWeights(graph: Graph): { graph: Graph; changed: string[] } {
  return relay(graph, 'uint8');
}

function relay(graph: Graph, from: 'int8' | 'uint8'): { graph: Graph; changed: string[] } {
  const g = cloneGraph(graph);
  const index = new GraphIndex(g);
  const changed: string[] = [];
  for (const dq of g.nodes) {
    if (dq.opType !== 'DequantizeLinear') continue;
    const [valuesName, , zeroName] = dq.inputs;
    const values = g.initializers.get(valuesName ?? '');
    const zeros = g.initializers.get(zeroName ?? '');
    if (values?.dtype !== from || zeros?.dtype !== from) continue;
    const readers = index.consumersOf(dq.outputs[0]!);
    if (readers.length === 0 || !readers.every((n) => WEIGHTED.has(n.opType) && n.inputs[0] !== dq.outputs[0])) continue;
    // Values and zero point this DequantizeLinear alone reads (a weight stored once for two of them stays as it is).
    if (![valuesName!, zeroName!].every((v) => index.consumersOf(v).length === 1)) continue;
    const z = zeros.data as Int8Array | Uint8Array;
    // Back: only the offset this layout wrote (a model quantized to asymmetric uint8 elsewhere keeps its own).
    if (from === 'uint8' && !z.every((v) => v === UNSIGNED_OFFSET)) continue;
    const shift = from === 'int8' ? UNSIGNED_OFFSET : -UNSIGNED_OFFSET;
    const to = from === 'int8' ? 'uint8' : 'int8';
    const make = (data: Int8Array | Uint8Array): Int8Array | Uint8Array => (to === 'uint8' ? Uint8Array.from(data, (v) => v + shift) : Int8Array.from(data, (v) => v + shift));
    g.initializers.set(valuesName!, makeTensor(to, values.dims, make(values.data as Int8Array | Uint8Array)));
    g.initializers.set(zeroName!, makeTensor(to, zeros.dims, make(z)));
    changed.push(...readers.map((n) => n.name || n.outputs[0] || ''));
  }
  return { graph: changed.length > 0 ? g : graph, changed };
}
