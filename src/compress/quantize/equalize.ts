/**
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019, §4.1). For a pair
 * Conv A → (ReLU | LeakyReLU | nothing) → Conv B, scaling A's output channel i by 1/sᵢ and B's input
 * channel i by sᵢ leaves the function unchanged (those activations are positively homogeneous). With
 * sᵢ = √(r1ᵢ / r2ᵢ) — r1ᵢ the largest |weight| of A's output channel i, r2ᵢ that of B's input channel i —
 * both become √(r1ᵢ·r2ᵢ), so no channel has a tiny range next to a huge one in one tensor: what per-tensor
 * weight quantization needs. Chains are coupled, so the pairs are swept a few times.
 */
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { float32 } from '../../onnx/tensor.js';

const HOMOGENEOUS = new Set(['Relu', 'LeakyRelu']);
const SWEEPS = 8;

export interface EqualizeReport {
  /** Pairs equalized, as "A → B" node labels. */
  pairs: string[];
  sweeps: number;
}

interface Pair {
  a: Node;
  b: Node;
}

export function equalizeCrossLayer(graph: Graph): { graph: Graph; report: EqualizeReport } {
  const g = cloneGraph(graph);
  const pairs = findPairs(g);
  let sweeps = 0;
  for (; sweeps < SWEEPS && pairs.length > 0; sweeps++) {
    let largest = 0;
    for (const pair of pairs) largest = Math.max(largest, equalizePair(g, pair));
    if (largest < 1e-3) break;
  }
  const label = (n: Node): string => n.name || `${n.opType}:${n.outputs[0]}`;
  return { graph: g, report: { pairs: pairs.map((p) => `${label(p.a)} → ${label(p.b)}`), sweeps } };
}

function isConvWithConstants(g: Graph, n: Node | undefined): n is Node {
  if (n?.opType !== 'Conv') return false;
  const w = g.initializers.get(n.inputs[1] ?? '');
  const b = n.inputs[2] ? g.initializers.get(n.inputs[2]) : undefined;
  return w?.dtype === 'float32' && (!n.inputs[2] || b?.dtype === 'float32');
}

function findPairs(g: Graph): Pair[] {
  const index = new GraphIndex(g);
  const pairs: Pair[] = [];
  const weightUses = (name: string): number => index.consumersOf(name).length;
  for (const a of g.nodes) {
    if (!isConvWithConstants(g, a)) continue;
    let y = a.outputs[0]!;
    let next = index.soleConsumer(y);
    if (next && HOMOGENEOUS.has(next.opType)) {
      y = next.outputs[0]!;
      next = index.soleConsumer(y);
    }
    if (!isConvWithConstants(g, next) || next.inputs[0] !== y) continue;
    // Weights shared with other nodes would change those nodes too.
    if ([a.inputs[1], a.inputs[2], next.inputs[1]].some((n) => n && weightUses(n) > 1)) continue;
    pairs.push({ a, b: next });
  }
  return pairs;
}

/** Equalize one pair in place (new tensors); returns max |log sᵢ| (0 when already equal). */
function equalizePair(g: Graph, { a, b }: Pair): number {
  const w1 = g.initializers.get(a.inputs[1]!)!;
  const w2 = g.initializers.get(b.inputs[1]!)!;
  const channels = w1.dims[0]!;
  const [out2, perGroup2] = [w2.dims[0]!, w2.dims[1]!];
  const groups2 = channels / perGroup2;
  if (!Number.isInteger(groups2) || out2 % groups2 !== 0) return 0;
  const k1 = w1.data.length / channels;
  const k2 = w2.data.length / (out2 * perGroup2);
  const outPerGroup2 = out2 / groups2;
  const d1 = w1.data as Float32Array;
  const d2 = w2.data as Float32Array;

  // Which weights of B read input channel i: outputs of i's group, local input index i mod perGroup2.
  const forEachB = (i: number, fn: (offset: number) => void): void => {
    const group = Math.floor(i / perGroup2);
    const local = i % perGroup2;
    for (let o = group * outPerGroup2; o < (group + 1) * outPerGroup2; o++) {
      const base = (o * perGroup2 + local) * k2;
      for (let k = 0; k < k2; k++) fn(base + k);
    }
  };
  const scales = new Float64Array(channels).fill(1);
  let largest = 0;
  for (let i = 0; i < channels; i++) {
    let r1 = 0;
    for (let k = i * k1; k < (i + 1) * k1; k++) r1 = Math.max(r1, Math.abs(d1[k]!));
    let r2 = 0;
    forEachB(i, (off) => (r2 = Math.max(r2, Math.abs(d2[off]!))));
    if (r1 === 0 || r2 === 0) continue;
    const s = Math.min(1e4, Math.max(1e-4, Math.sqrt(r1 / r2)));
    scales[i] = s;
    largest = Math.max(largest, Math.abs(Math.log(s)));
  }
  if (largest === 0) return 0;
  const n1 = new Float32Array(d1.length);
  for (let i = 0; i < channels; i++) for (let k = i * k1; k < (i + 1) * k1; k++) n1[k] = d1[k]! / scales[i]!;
  const n2 = Float32Array.from(d2);
  for (let i = 0; i < channels; i++) forEachB(i, (off) => (n2[off] = d2[off]! * scales[i]!));
  g.initializers.set(a.inputs[1]!, float32(w1.dims, n1));
  g.initializers.set(b.inputs[1]!, float32(w2.dims, n2));
  if (a.inputs[2]) {
    const b1 = g.initializers.get(a.inputs[2])!.data as Float32Array;
    g.initializers.set(a.inputs[2], float32([channels], Array.from(b1, (v, i) => v / scales[i]!)));
  }
  return largest;
}
