/**
 * Dynamic quantization of MatMul / Gemm layers with constant weights: weights int8 (per output column
 * or per tensor) stored in the file, activations quantized to uint8 at run time from each batch's own
 * range (no calibration). Written with standard ONNX ops in the form ONNX Runtime fuses into
 * DynamicQuantizeMatMul:
 *
 *   A → DynamicQuantizeLinear → (A_q, A_scale, A_zp)
 *   MatMulInteger(A_q, W_q, A_zp, W_zp) → Cast(float) → Mul(·, A_scale · W_scale) [→ Add(bias)]
 *
 * Convolutions stay float: for CNNs static quantization is the mode that pays.
 *
 * `cpu: 'avx2'` stores the weights as uint8 (q + 128 at zero point 128, the same dequantized values):
 * ORT then runs its u8×u8 kernel, exact on x64 CPUs without VNNI, where the u8×s8 one adds pairs of
 * products in 16 bits and saturates (a 64→10 Gemm on inputs in 0…4 came out 1.70 off the exact
 * result on an AVX2-only EPYC; uint8: 0). Still one fused DynamicQuantizeMatMul.
 */
import { fixWeightsAsConstants } from '../../passes/fix-weights.js';
import { untieIdentityWeights } from '../../passes/untie-weights.js';
import { option, usageError } from '../../errors.js';
import { cloneGraph, type Graph, type Node } from '../../onnx/graph.js';
import { float32, makeTensor, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import { checkExcluded, nodeLabel } from './mark.js';
import { quantizeWeight } from './params.js';
import type { QuantizeOptions } from './types.js';
import type { CpuChoice } from './cpu.js';
import { UNSIGNED_OFFSET } from './unsigned-layout.js';

export interface DynamicResult {
  graph: Graph;
  /** Layers converted, by node label. */
  layers: string[];
}

export function quantizeDynamic(graph: Graph, options: Pick<QuantizeOptions, 'perChannel' | 'reduceRange' | 'exclude'> & { cpu?: CpuChoice }): DynamicResult {
  checkDynamicCpu(options.cpu);
  const opset = graph.opsets[''] ?? 0;
  if (opset < 11) throw usageError(`dynamic quantization needs ONNX opset 11 (DynamicQuantizeLinear); the model uses ${opset}`, 're-export the model with opset 13 or later');
  checkExcluded(graph.nodes, options.exclude);
  const g = cloneGraph(untieIdentityWeights(fixWeightsAsConstants(graph)));
  const taken = valueNames(g);
  const layers: string[] = [];
  const nodes: Node[] = [];
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const node of g.nodes) {
    const layer = options.exclude.includes(nodeLabel(node)) ? undefined : asLayer(g, node);
    if (!layer) {
      nodes.push(node);
      continue;
    }
    layers.push(nodeLabel(node));
    nodes.push(...lower(g, taken, node, layer, options));
  }
  g.nodes = nodes;
  const read = new Set(nodes.flatMap((n) => n.inputs));
  for (const name of [...g.initializers.keys()]) if (uses.has(name) && !read.has(name)) g.initializers.delete(name);
  return { graph: g, layers };
}

/** The cpu choices dynamic quantization takes: AMX's layout is for Convs, which it leaves float. */
export function checkDynamicCpu(cpu: CpuChoice | undefined): void {
  if (cpu === 'amx') throw usageError(`${option('--cpu', 'amx')} lays int8 Conv weights out for Intel AMX, and dynamic quantization quantizes MatMul/Gemm layers only`, `drop ${option('--cpu', 'amx')} (${option('--cpu', 'avx2')} stores the weights as uint8, for x64 CPUs without VNNI)`);
}

interface Layer {
  /** [K, N] float weight. */
  weight: Float32Array;
  k: number;
  n: number;
  /** Multiplies A·W (Gemm alpha). */
  alpha: number;
  /** beta · C as [N] or a scalar, when there is a bias. */
  bias?: Tensor<'float32'>;
}

/** A MatMul with a constant 2-D right operand, or a Gemm (transA = 0) with a constant B and a 1-D or scalar C. */
function asLayer(g: Graph, node: Node): Layer | undefined {
  if (node.opType !== 'MatMul' && node.opType !== 'Gemm') return undefined;
  const w = g.initializers.get(node.inputs[1] ?? '');
  if (w?.dtype !== 'float32' || w.dims.length !== 2) return undefined;
  const data = w.data as Float32Array;
  if (node.opType === 'MatMul') return { weight: data, k: w.dims[0]!, n: w.dims[1]!, alpha: 1 };
  const a = node.attributes;
  if (a['transA']?.value === 1) return undefined;
  const transB = a['transB']?.value === 1;
  const alpha = a['alpha']?.type === 'float' ? a['alpha'].value : 1;
  const beta = a['beta']?.type === 'float' ? a['beta'].value : 1;
  const [rows, cols] = w.dims as [number, number];
  const [k, n] = transB ? [cols, rows] : [rows, cols];
  const weight = transB ? transpose(data, rows, cols) : data;
  const c = node.inputs[2] ? g.initializers.get(node.inputs[2]) : undefined;
  if (node.inputs[2] && (c?.dtype !== 'float32' || c.dims.length > 1 || (c.data.length !== n && c.data.length !== 1))) return undefined;
  const bias = c ? float32([c.data.length], Array.from(c.data as Float32Array, (v) => v * beta)) : undefined;
  return { weight, k, n, alpha, ...(bias ? { bias } : {}) };
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

function lower(g: Graph, taken: Set<string>, node: Node, layer: Layer, options: Pick<QuantizeOptions, 'perChannel' | 'reduceRange'> & { cpu?: CpuChoice }): Node[] {
  const base = node.name || node.outputs[0]!;
  const fresh = (s: string): string => freshName(taken, `${base}_${s}`);
  const wq = quantizeWeight(float32([layer.k, layer.n], layer.weight), options.perChannel ? 1 : undefined, { weightType: 'int8', reduceRange: options.reduceRange });
  const [wName, wScale, wZero] = [fresh('weight_quantized'), fresh('weight_scale'), fresh('weight_zero_point')];
  const scales = wq.params.map((p) => Math.fround(p.scale * layer.alpha));
  const dims = options.perChannel ? [layer.n] : [];
  g.initializers.set(wScale, float32(dims, scales));
  if (options.cpu === 'avx2') {
    g.initializers.set(wName, makeTensor('uint8', [layer.k, layer.n], Uint8Array.from(wq.values, (q) => q + UNSIGNED_OFFSET)));
    g.initializers.set(wZero, makeTensor('uint8', dims, new Uint8Array(scales.length).fill(UNSIGNED_OFFSET)));
  } else {
    g.initializers.set(wName, makeTensor('int8', [layer.k, layer.n], Int8Array.from(wq.values)));
    g.initializers.set(wZero, makeTensor('int8', dims, new Int8Array(scales.length)));
  }
  const [aq, as, az, acc, accf, scale] = ['a_quantized', 'a_scale', 'a_zero_point', 'int32', 'float', 'scale'].map(fresh) as [string, string, string, string, string, string];
  const out = node.outputs[0]!;
  const product = layer.bias ? fresh('product') : out;
  const op = (opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node => ({
    name: fresh(opType),
    opType,
    domain: '',
    inputs,
    outputs,
    attributes,
  });
  const nodes = [
    op('DynamicQuantizeLinear', [node.inputs[0]!], [aq, as, az]),
    op('MatMulInteger', [aq, wName, az, wZero], [acc]),
    op('Cast', [acc], [accf], { to: { type: 'int', value: 1 } }),
    op('Mul', [as, wScale], [scale]),
    op('Mul', [accf, scale], [product]),
  ];
  if (layer.bias) {
    const biasName = fresh('bias');
    g.initializers.set(biasName, layer.bias);
    nodes.push(op('Add', [product, biasName], [out]));
  }
  return nodes;
}
