/**
 * The QAT training graph: `slim quantize`'s QDQ graph with each integer weight turned back into a float
 * ("latent") weight behind a QuantizeLinear → DequantizeLinear pair, and each int32 bias into a float
 * bias. Activation Q → DQ pairs stay exactly where PTQ put them, with PTQ's calibrated scales. The
 * engine runs every Q → DQ pair as fake quantization with straight-through gradients, so the forward
 * pass is the int8 model's; export.ts turns the trained graph back into the integer QDQ form.
 */
import { QAT_GRID_KEY } from '../../engine/compile.js';
import { SlimError } from '../../errors.js';
import { GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { float32, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import type { Int8Cpu } from '../quantize/index.js';
import { nodeLabel } from '../quantize/mark.js';
import { qRange } from '../quantize/math.js';
import { exportCpu, toCanonicalLayout } from './layout.js';

/** A trained weight and the quantization it ships with. */
export interface QatWeight {
  /** The float (latent) weight initializer the engine trains. */
  name: string;
  /** The QuantizeLinear node added in front of it and the DequantizeLinear that reads it. */
  quantize: string;
  dequantize: string;
  scale: string;
  zeroPoint: string;
  /** Per-channel axis, undefined for one scale per tensor. */
  axis: number | undefined;
  dtype: 'int8' | 'uint8';
  /** The integer grid PTQ used: [-127, 127] symmetric int8, [-64, 64] with reduce-range, … */
  qmin: number;
  qmax: number;
  /** The layer (Conv/Gemm/MatMul) that reads it, by label. */
  layer: string;
}

/** A float bias that ships as int32 with scale = scale(input) · scale(weight). */
export interface QatBias {
  name: string;
  layer: string;
  /** Scale initializers of the layer's input activation and of its weight. */
  inputScale: string;
  weightScale: string;
  perChannel: boolean;
}

export interface QatLayout {
  weights: QatWeight[];
  biases: QatBias[];
  /** The CPU layout PTQ gave the int8 Convs (layout.ts); export re-applies it. */
  cpu: Int8Cpu;
  /** A measured layout's AMX Convs (quantize/tune-layout.ts). */
  amxConvs?: string[];
}

export interface QatGraph {
  graph: Graph;
  layout: QatLayout;
  /** Initializers the engine must train besides those its lowerings name: the latent weights. */
  trainable: Set<string>;
  /**
   * Latent weights that start from the float model's values. Only their exact zeros mean pruning: a
   * latent dequantized from integers is exactly zero wherever a weight rounded to the zero point.
   */
  fromFloat: Set<string>;
}

const WEIGHT_SLOT: Record<string, number> = { Conv: 1, Gemm: 1, MatMul: 1 };

export interface ToQatOptions {
  /**
   * The float graph the QDQ graph was made from (`QuantizedResult.float`): latent weights and biases
   * start from its values, which fake-quantize to exactly PTQ's integers. Without it they start from
   * the dequantized integers (the same forward pass, but weights sit on the grid).
   */
  float?: Graph;
  /** Named in errors. */
  file?: string;
}

/** Whether slim quantize recorded reduce-range weights (its 'slimkit.quantization' metadata). */
function quantizedWithReducedRange(qdq: Graph): boolean {
  try {
    const description = JSON.parse(qdq.metadata['slimkit.quantization'] ?? '{}') as { weights?: unknown };
    return typeof description.weights === 'string' && description.weights.includes('reduced range');
  } catch {
    return false;
  }
}

/**
 * The integer grid a stored weight was quantized on, which QAT must keep: symmetric int8 is
 * [-127, 127] (ONNX Runtime's quantizer and slim quantize), reduce-range [-64, 64]; a -128 in the
 * tensor means another tool used the full range, which is then kept.
 */
function weightGrid(q: Tensor, reduced: boolean): [number, number] {
  const type = q.dtype as 'int8' | 'uint8';
  const { qmin, qmax } = type === 'int8' && (q.data as Int8Array).includes(-128) ? qRange(type) : qRange(type, { symmetric: true, reduceRange: reduced });
  return [qmin, qmax];
}

export function toQatGraph(qdq: Graph, options: ToQatOptions = {}): QatGraph {
  // Training runs the canonical form; export re-applies PTQ's CPU layout.
  const canonical = toCanonicalLayout(qdq);
  const g = canonical.graph;
  const index = new GraphIndex(g);
  const taken = valueNames(g);
  const floatNodes = new Map((options.float?.nodes ?? []).map((n) => [nodeLabel(n), n]));
  const layout: QatLayout = { weights: [], biases: [], cpu: exportCpu(canonical), ...(canonical.amxConvs ? { amxConvs: canonical.amxConvs } : {}) };
  const trainable = new Set<string>();
  const fromFloat = new Set<string>();
  const reducedRange = quantizedWithReducedRange(qdq);
  const addBefore = new Map<Node, Node>();
  const doomed = new Set<Node>();

  /** A DequantizeLinear reading an integer initializer, whose output only `layer` reads. */
  const storedInteger = (value: string | undefined, layer: Node, dtypes: readonly string[]): { dq: Node; q: Tensor } | undefined => {
    if (!value) return undefined;
    const dq = index.producer.get(value);
    if (dq?.opType !== 'DequantizeLinear' || index.consumersOf(value).length !== 1 || index.consumersOf(value)[0] !== layer) return undefined;
    const q = g.initializers.get(dq.inputs[0] ?? '');
    if (!q || !dtypes.includes(q.dtype) || index.consumersOf(dq.inputs[0]!).length !== 1) return undefined;
    return { dq, q };
  };

  for (const layer of g.nodes) {
    const slot = WEIGHT_SLOT[layer.opType];
    if (slot === undefined) continue;
    const weight = storedInteger(layer.inputs[slot], layer, ['int8', 'uint8']);
    if (!weight) continue;
    const label = nodeLabel(layer);
    const { dq } = weight;
    const [scale, zeroPoint] = [dq.inputs[1]!, dq.inputs[2] ?? ''];
    if (!zeroPoint) throw new SlimError({ ...(options.file ? { file: options.file } : {}), where: `node '${dq.name}'`, problem: 'a weight DequantizeLinear without a zero point', fix: 'quantize the float model with slim quantize' });
    const scaleTensor = g.initializers.get(scale);
    const axis = scaleTensor && scaleTensor.dims.length === 1 && scaleTensor.data.length > 1 ? axisOf(dq) : undefined;
    const floatNode = floatNodes.get(label);
    const fromFloatModel = floatInitializer(options.float, floatNode?.inputs[slot], weight.q.dims);
    // A float model given must hold every quantized layer's weight: one that does not is another model,
    // and falling back to the int8 weights would hide that (a trial passed another architecture unnoticed).
    if (options.float && !fromFloatModel) throw notTheFloatModel(options.float, floatNode, slot, weight.q.dims, label, options.file);
    const [qmin, qmax] = weightGrid(weight.q, reducedRange);
    if (fromFloatModel) checkQuantizesTo(fromFloatModel, weight.q, g, dq, axis, [qmin, qmax], { layer: label, file: options.file });
    const latent = fromFloatModel ?? dequantize(weight.q, g, dq, axis);
    const name = freshName(taken, baseName(floatNode?.inputs[slot], dq.inputs[0]!));
    g.initializers.set(name, latent);
    g.initializers.delete(dq.inputs[0]!);
    const quantized = freshName(taken, `${name}_fake_quantized`);
    const q: Node = {
      name: freshName(taken, `${name}_QuantizeLinear`),
      opType: 'QuantizeLinear',
      domain: '',
      inputs: [name, scale, zeroPoint],
      outputs: [quantized],
      attributes: dq.attributes['axis'] ? { axis: dq.attributes['axis'] } : {},
    };
    addBefore.set(dq, q);
    dq.inputs = [quantized, scale, zeroPoint];
    trainable.add(name);
    if (fromFloatModel) fromFloat.add(name);
    layout.weights.push({ name, quantize: q.name, dequantize: dq.name, scale, zeroPoint, axis, dtype: weight.q.dtype as 'int8' | 'uint8', qmin, qmax, layer: label });

    // The int32 bias (Conv / Gemm input 2) becomes float: its scale follows the trained scales at export.
    const bias = layer.opType === 'MatMul' ? undefined : storedInteger(layer.inputs[2], layer, ['int32']);
    const inputDq = index.producer.get(layer.inputs[0] ?? '');
    if (!bias || inputDq?.opType !== 'DequantizeLinear') continue;
    const biasScale = g.initializers.get(bias.dq.inputs[1]!);
    const floatBias = floatInitializer(options.float, floatNode?.inputs[2], bias.q.dims) ?? dequantize(bias.q, g, bias.dq, biasScale && biasScale.dims.length === 1 ? 0 : undefined);
    const biasName = freshName(taken, baseName(floatNode?.inputs[2], bias.dq.inputs[0]!));
    g.initializers.set(biasName, floatBias);
    for (const v of bias.dq.inputs) if (v && index.consumersOf(v).length === 1) g.initializers.delete(v);
    doomed.add(bias.dq);
    layer.inputs[2] = biasName;
    layout.biases.push({ name: biasName, layer: label, inputScale: inputDq.inputs[1]!, weightScale: scale, perChannel: axis !== undefined });
  }

  g.nodes = g.nodes.flatMap((n) => (doomed.has(n) ? [] : addBefore.has(n) ? [addBefore.get(n)!, n] : [n]));
  if (layout.weights.length === 0) {
    throw new SlimError({
      ...(options.file ? { file: options.file } : {}),
      problem: 'the model has no quantized Conv/Gemm/MatMul weights to train',
      fix: 'quantization-aware training starts from slim quantize --mode static output (or its float model with --qat)',
    });
  }
  // Every plan compiled from this graph (or a clone) fake-quantizes weights on PTQ's grid.
  const narrower = (w: QatWeight): boolean => w.qmin !== qRange(w.dtype).qmin || w.qmax !== qRange(w.dtype).qmax;
  const grid = Object.fromEntries(layout.weights.filter(narrower).map((w) => [w.quantize, [w.qmin, w.qmax]]));
  if (Object.keys(grid).length > 0) g.metadata = { ...g.metadata, [QAT_GRID_KEY]: JSON.stringify(grid) };
  return { graph: g, layout, trainable, fromFloat };
}

function axisOf(dq: Node): number {
  const a = dq.attributes['axis'];
  return a?.type === 'int' ? a.value : 1;
}

/** "conv1.weight" from the float graph, else the stored name without its "_quantized" suffix. */
function baseName(floatName: string | undefined, stored: string): string {
  return floatName ?? stored.replace(/_quantized(_\d+)?$/, '');
}

/** The float model lacks `layer`'s weight, or holds it in another shape: it is not the model the int8 one was made from. */
function notTheFloatModel(float: Graph, node: Node | undefined, slot: number, dims: readonly number[], layer: string, file: string | undefined): SlimError {
  const t = node ? float.initializers.get(node.inputs[slot] ?? '') : undefined;
  const what = !node ? 'has no node by that name' : !t ? 'computes its weight instead of storing it' : `holds it as ${t.dtype} ${t.dims.join('×')}`;
  return new SlimError({
    ...(file ? { file } : {}),
    where: `layer '${layer}'`,
    problem: `the float model ${what}, where the int8 model has a ${dims.join('×')} weight: it is not the model the int8 one was quantized from`,
    fix: 'pass the float graph quantization returned (QuantizeModelResult.float), or no float model (QAT then starts from the int8 weights)',
  });
}

function floatInitializer(graph: Graph | undefined, name: string | undefined, dims: readonly number[]): Tensor<'float32'> | undefined {
  const t = name ? graph?.initializers.get(name) : undefined;
  if (t?.dtype !== 'float32' || t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) return undefined;
  return float32(t.dims, t.data as Float32Array);
}

/** Weights of the float model allowed to round to another integer than the stored one (ties, bias correction). */
const MAX_OFF_GRID = 0.01;

/**
 * The float model's weight must be what the int8 weight was quantized from: each value, quantized with the
 * stored scale and zero point, lands within one step of the stored integer. Another model of the same
 * architecture (or the same model before BatchNorm folding), matched by name and shape, would start QAT
 * from weights its scales were not calibrated for, and ruin it without a word.
 */
function checkQuantizesTo(latent: Tensor<'float32'>, q: Tensor, g: Graph, dq: Node, axis: number | undefined, grid: readonly [number, number], o: { layer: string; file: string | undefined }): void {
  const scale = g.initializers.get(dq.inputs[1]!)!.data as Float32Array;
  const zeroT = dq.inputs[2] ? g.initializers.get(dq.inputs[2]) : undefined;
  const a = axis === undefined ? undefined : axis < 0 ? axis + q.dims.length : axis;
  let inner = 1;
  if (a !== undefined) for (let d = a + 1; d < q.dims.length; d++) inner *= q.dims[d]!;
  const channels = a === undefined ? 1 : q.dims[a]!;
  const stored = q.data as ArrayLike<number>;
  let off = 0;
  for (let i = 0; i < latent.data.length; i++) {
    const c = a === undefined ? 0 : Math.floor(i / inner) % channels;
    if (!(scale[c]! > 0)) continue;
    const integer = Math.min(grid[1], Math.max(grid[0], Math.round(latent.data[i]! / scale[c]!) + (zeroT ? Number(zeroT.data[c]) : 0)));
    if (Math.abs(integer - stored[i]!) > 1) off++;
  }
  if (off > MAX_OFF_GRID * latent.data.length) {
    throw new SlimError({
      ...(o.file ? { file: o.file } : {}),
      where: `layer '${o.layer}'`,
      problem: `the float model's weights are not the ones the int8 model was quantized from (${off} of ${latent.data.length} quantize to other integers): QAT would start from weights its scales do not fit`,
      fix: 'pass the float graph quantization returned (QuantizeModelResult.float), or no float model (QAT then starts from the int8 weights)',
    });
  }
}

/** DequantizeLinear of a stored integer tensor: (q − zero point) · scale, per tensor or along `axis`. */
function dequantize(q: Tensor, g: Graph, dq: Node, axis: number | undefined): Tensor<'float32'> {
  const scale = g.initializers.get(dq.inputs[1]!)!.data as Float32Array;
  const zeroT = dq.inputs[2] ? g.initializers.get(dq.inputs[2]) : undefined;
  const zero = (k: number): number => (zeroT ? Number(zeroT.data[k]) : 0);
  const data = q.data as ArrayLike<number>;
  const out = new Float32Array(data.length);
  const a = axis === undefined ? undefined : axis < 0 ? axis + q.dims.length : axis;
  let inner = 1;
  if (a !== undefined) for (let d = a + 1; d < q.dims.length; d++) inner *= q.dims[d]!;
  const channels = a === undefined ? 1 : q.dims[a]!;
  for (let i = 0; i < data.length; i++) {
    const c = a === undefined ? 0 : Math.floor(i / inner) % channels;
    out[i] = (data[i]! - zero(c)) * scale[c]!;
  }
  return float32(q.dims, out);
}
