/**
 * From the trained QAT graph back to the integer QDQ graph ONNX Runtime runs: each latent weight is
 * quantized with its (trained) scale by the QuantizeLinear in front of it — with the arithmetic the
 * engine's fake quantization ran (ATen: x · float32(1/s), round half to even) — and stored as integers;
 * each float bias becomes int32 at scale(input) · scale(weight). Activation Q → DQ pairs and their
 * scales are already in their shipping form. So the weights the engine trained on are, bit for bit,
 * the weights that ship; the only new rounding is the int32 bias (half a unit of the accumulator).
 */
import { QAT_GRID_KEY } from '../../engine/compile.js';
import { SlimError } from '../../errors.js';
import { cloneGraph, type Graph, type Node } from '../../onnx/graph.js';
import { integerRange } from '../../onnx/dtype.js';
import { float32, makeTensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import { nodeLabel } from '../quantize/mark.js';
import { roundHalfEven } from '../quantize/math.js';
import type { QatLayout } from './graph.js';
import { toCpuLayout } from './layout.js';
import { withStepRecord } from '../../onnx/provenance.js';

/** The floor the engine applies to learnable scales (native/src/qat.cc kMinScale). */
export const MIN_SCALE = 1e-8;

/** A trained scale as the engine's LSQ kernel uses it: max(|s|, MIN_SCALE), in float32. */
export function settledScale(s: number): number {
  return Math.fround(Math.max(Math.abs(s), MIN_SCALE));
}

/**
 * The trained graph with every QuantizeLinear scale as the engine used it (max(|s|, MIN_SCALE)), so
 * that any runtime — the engine's fixed-scale lowering, ONNX Runtime — computes what was trained.
 * Returns the number of scales that changed (only LSQ's can).
 */
export function settleScales(graph: Graph): { graph: Graph; changed: number } {
  const g = cloneGraph(graph);
  let changed = 0;
  const names = new Set(g.nodes.filter((n) => n.opType === 'QuantizeLinear' && n.inputs[1]).map((n) => n.inputs[1]!));
  for (const name of names) {
    const t = g.initializers.get(name);
    if (t?.dtype !== 'float32') continue;
    const data = t.data as Float32Array;
    const settled = Float32Array.from(data, settledScale);
    if (settled.some((v, i) => v !== data[i])) {
      changed++;
      g.initializers.set(name, float32(t.dims, settled));
    }
  }
  return { graph: g, changed };
}

export interface ExportResult {
  graph: Graph;
  /** Biases whose int32 value had to be clamped (never seen in practice; listed, never hidden). */
  warnings: string[];
}

export function exportQat(trained: Graph, layout: QatLayout, options: { description?: Record<string, unknown> } = {}): ExportResult {
  // Scales as the engine used them (LSQ may have left one negative or below the floor).
  const g = settleScales(trained).graph;
  const taken = valueNames(g);
  const warnings: string[] = [];
  const nodes = new Map(g.nodes.map((n) => [n.name, n]));
  const removed = new Set<Node>();
  const scaleOf = (name: string): Float32Array => {
    const t = g.initializers.get(name);
    if (t?.dtype !== 'float32') throw new SlimError({ where: `initializer '${name}'`, problem: 'a quantization scale is missing or not float32' });
    return t.data as Float32Array;
  };

  for (const w of layout.weights) {
    const q = nodes.get(w.quantize);
    const dq = nodes.get(w.dequantize);
    const weight = g.initializers.get(w.name);
    if (!q || !dq || weight?.dtype !== 'float32') {
      throw new SlimError({ where: `weight '${w.name}'`, problem: 'the trained graph does not have the layout it was trained with', fix: 'export the graph that quantization-aware training returned' });
    }
    const s = scaleOf(w.scale);
    const zeroT = g.initializers.get(w.zeroPoint);
    const zero = (c: number): number => (zeroT ? Number(zeroT.data[c]) : 0);
    const [qmin, qmax] = [w.qmin, w.qmax];
    const data = weight.data as Float32Array;
    const { inner, channels } = layoutOf(weight.dims, w.axis);
    const values = w.dtype === 'int8' ? new Int8Array(data.length) : new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const c = w.axis === undefined ? 0 : Math.floor(i / inner) % channels;
      // ATen's arithmetic (float32 product with the float32 reciprocal), so the integers are the ones trained.
      values[i] = Math.min(qmax, Math.max(qmin, roundHalfEven(Math.fround(data[i]! * Math.fround(1 / s[c]!))) + zero(c)));
    }
    const stored = freshName(taken, `${w.name}_quantized`);
    g.initializers.set(stored, makeTensor(w.dtype, weight.dims, values));
    g.initializers.delete(w.name);
    dq.inputs[0] = stored;
    removed.add(q);
  }

  const insertBefore = new Map<string, Node[]>();
  for (const b of layout.biases) {
    const bias = g.initializers.get(b.name);
    if (bias?.dtype !== 'float32') throw new SlimError({ where: `bias '${b.name}'`, problem: 'the trained graph lacks this float bias' });
    const sx = scaleOf(b.inputScale)[0]!;
    const sw = scaleOf(b.weightScale);
    const data = bias.data as Float32Array;
    const channels = b.perChannel ? sw.length : 1;
    // The same scale PTQ gives an int32 bias: fround(s_x · s_w[c]).
    const sb = Float32Array.from({ length: channels }, (_, c) => Math.fround(sx * sw[c]!));
    const [lo, hi] = integerRange('int32')!;
    let clamped = 0;
    const values = Int32Array.from(data, (v, i) => {
      const q = roundHalfEven(v / sb[b.perChannel ? i : 0]!);
      if (q < lo || q > hi) clamped++;
      return Math.min(hi, Math.max(lo, q));
    });
    if (clamped > 0) warnings.push(`bias '${b.name}': ${clamped} value(s) exceeded int32 at scale s_x·s_w and were clamped`);
    const stored = freshName(taken, `${b.name}_quantized`);
    const scale = freshName(taken, `${b.name}_scale`);
    const zeroPoint = freshName(taken, `${b.name}_zero_point`);
    const dims = b.perChannel ? [channels] : [];
    g.initializers.set(stored, makeTensor('int32', bias.dims, values));
    g.initializers.set(scale, float32(dims, sb));
    g.initializers.set(zeroPoint, makeTensor('int32', dims, new Int32Array(channels)));
    g.initializers.delete(b.name);
    const output = freshName(taken, `${b.name}_dequantized`);
    const layer = g.nodes.find((n) => nodeLabel(n) === b.layer);
    if (!layer) throw new SlimError({ where: `layer '${b.layer}'`, problem: 'the trained graph lacks this layer' });
    const dq: Node = {
      name: freshName(taken, `${b.name}_DequantizeLinear`),
      opType: 'DequantizeLinear',
      domain: '',
      inputs: [stored, scale, zeroPoint],
      outputs: [output],
      attributes: b.perChannel ? { axis: { type: 'int', value: 0 } } : {},
    };
    layer.inputs[2] = output;
    insertBefore.set(b.layer, [...(insertBefore.get(b.layer) ?? []), dq]);
  }

  g.nodes = g.nodes.flatMap((n) => (removed.has(n) ? [] : [...(insertBefore.get(nodeLabel(n)) ?? []), n]));
  // The grid note is for training plans; the shipped graph holds the integers themselves.
  const { [QAT_GRID_KEY]: _grid, ...metadata } = g.metadata;
  g.metadata = options.description ? withStepRecord(metadata, 'slimkit.qat', options.description) : metadata;
  // The int8 Conv layout PTQ chose for the target CPU (exact re-encodings; layout.ts).
  return { graph: toCpuLayout(g, layout.cpu, layout.amxConvs), warnings };
}

function layoutOf(dims: readonly number[], axis: number | undefined): { inner: number; channels: number } {
  if (axis === undefined) return { inner: 1, channels: 1 };
  const a = axis < 0 ? axis + dims.length : axis;
  let inner = 1;
  for (let d = a + 1; d < dims.length; d++) inner *= dims[d]!;
  return { inner, channels: dims[a]! };
}
