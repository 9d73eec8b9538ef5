/**
 * What ONNX Runtime actually runs for a quantized model: the graph after its optimizations (QDQ node
 * groups fused into QLinearConv, QGemm, ...), read back from ORT's optimized-model output, and which of
 * its ops still compute in float. A QDQ model whose patterns ORT does not recognise runs DequantizeLinear
 * + float kernels: correct, but no faster — this is how to tell.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeModel } from '../../onnx/io.js';
import { dtypeFromOnnx, isFloat, type DType } from '../../onnx/dtype.js';
import { GraphIndex, type Graph } from '../../onnx/graph.js';
import { openSession } from '../../runtime/ort.js';

/** Integer kernels and int8-capable data movement (ORT keeps these on int8 data after QDQ fusion). */
const INTEGER_OR_MOVEMENT: ReadonlySet<string> = new Set([
  'QuantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearAdd', 'QLinearMul', 'QLinearGlobalAveragePool',
  'QLinearAveragePool', 'QLinearConcat', 'QLinearSigmoid', 'QLinearLeakyRelu', 'QLinearSoftmax', 'QLinearMatMul',
  'QGemm', 'MatMulInteger', 'MatMulIntegerToFloat', 'DynamicQuantizeMatMul', 'ConvInteger', 'NhwcMaxPool',
  'Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Gather', 'Slice', 'Split', 'MaxPool', 'Identity', 'Pad',
]);

export interface OrtKernels {
  /** Op types of the graph ORT runs, with counts. */
  ops: Record<string, number>;
  /** The subset that computes in float (DequantizeLinear included: it means a pattern was not fused). */
  floatOps: Record<string, number>;
  /** Nodes that compute in float, Q/DQ and shape reads aside, by name (ORT keeps the names of nodes it does not fuse). */
  floatNodes: { node: string; opType: string }[];
  /**
   * Float Adds ORT folded into the Conv before them (a residual sum: the NCHWc Conv's or FusedConv's 4th
   * input). They still compute in float, counted in no op of their own: a float Add a report lists may
   * be one of these.
   */
  addsInConvs: number;
  /**
   * Float compute ops between int8 ones — reading a tensor dequantized from int8, and with a QuantizeLinear
   * after them — by op type: each converts its tensor back to float and again to int8. A model's own input
   * preprocessing (before the first QuantizeLinear), a float tail (after the last) and float constants
   * (a grid an Expand broadcasts) are not among them.
   */
  islandOps: Record<string, number>;
}

/** A float Conv that also sums a residual input (ORT's Conv + Add fusion). */
const sumsResidual = (n: Graph['nodes'][number]): boolean =>
  ((n.opType === 'Conv' && n.domain === 'com.microsoft.nchwc') || n.opType === 'FusedConv') && (n.inputs[3] ?? '') !== '';

/** Float ops that are not compute: the Q/DQ boundaries themselves and shape reads. */
const NOT_COMPUTE: ReadonlySet<string> = new Set(['DequantizeLinear', 'Shape', 'Constant']);

/**
 * Nodes of the written QDQ model that were quantized — a DequantizeLinear feeds them — yet ONNX Runtime
 * runs in float: it had no fused integer kernel for their pattern here. `keptFloat`: nodes the quantizer
 * left float itself (already reported with their reason).
 */
export function unfusedNodes(written: Graph, kernels: OrtKernels, keptFloat: ReadonlySet<string>): { node: string; opType: string }[] {
  const index = new GraphIndex(written);
  const dequantized = (v: string): boolean => index.producer.get(v)?.opType === 'DequantizeLinear';
  // By name (ORT keeps the names of nodes it leaves alone); unnamed ones cannot be told apart.
  const quantized = new Set(written.nodes.filter((n) => n.name && n.opType !== 'QuantizeLinear' && n.opType !== 'DequantizeLinear' && n.inputs.some(dequantized)).map((n) => n.name));
  return kernels.floatNodes.filter((f) => quantized.has(f.node) && !keptFloat.has(f.node));
}

export async function ortKernels(model: Uint8Array | string, options: { threads?: number } = {}): Promise<OrtKernels> {
  const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-ort-optimized-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const session = await openSession(model, { threads: options.threads ?? 1, optimizedModelFilePath: file, label: 'quantized model' });
    await session.close();
    const ops: Record<string, number> = {};
    const graph = decodeModel(readFileSync(file));
    const nodes = graph.nodes;
    for (const n of nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
    const { onFloats, onDequantized } = floatComputeNodes(graph);
    const computesInFloat = (n: Graph['nodes'][number]): boolean => !INTEGER_OR_MOVEMENT.has(n.opType) && !NOT_COMPUTE.has(n.opType) && onFloats.has(n);
    const floatNodes = nodes.filter(computesInFloat).map((n) => ({ node: n.name, opType: n.opType }));
    // By op type, DequantizeLinear kept (it means a pattern was not fused); ops ORT ran on int8 or on shapes are not.
    const floatOps: Record<string, number> = {};
    for (const n of nodes) if (n.opType === 'DequantizeLinear' || computesInFloat(n)) floatOps[n.opType] = (floatOps[n.opType] ?? 0) + 1;
    const islandOps: Record<string, number> = {};
    for (const n of beforeQuantizeNodes(graph)) if (computesInFloat(n) && onDequantized.has(n)) islandOps[n.opType] = (islandOps[n.opType] ?? 0) + 1;
    return { ops, floatOps, floatNodes, addsInConvs: nodes.filter(sumsResidual).length, islandOps };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Nodes with a QuantizeLinear downstream of them. */
function beforeQuantizeNodes(graph: Graph): Set<Graph['nodes'][number]> {
  const index = new GraphIndex(graph);
  const seen = new Set<Graph['nodes'][number]>();
  const stack = graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DynamicQuantizeLinear');
  while (stack.length) {
    const n = stack.pop()!;
    for (const v of n.inputs) {
      const p = index.producer.get(v);
      if (p && !seen.has(p)) (seen.add(p), stack.push(p));
    }
  }
  return seen;
}

/**
 * The nodes of ORT's optimized graph that read a float tensor. Op types alone said too much: ORT runs a
 * Resize or a DepthToSpace on the uint8 tensor a QLinearConv wrote, with no DequantizeLinear around it,
 * and a shape computation (Shape → Gather → Concat → Expand's target) reads int64 — neither converts
 * anything. Values are followed from the graph's inputs and stored tensors by element type: a node's
 * outputs are int8 when it quantizes or its first input is int8 (data movement), integer when it reads
 * only integers (or is Shape), else float.
 */
function floatComputeNodes(graph: Graph): { onFloats: Set<Graph['nodes'][number]>; onDequantized: Set<Graph['nodes'][number]> } {
  type Kind = 'float' | 'int8' | 'integer';
  const kinds = new Map<string, Kind>();
  const kindOf = (dtype: DType | undefined): Kind => (dtype === 'int8' || dtype === 'uint8' ? 'int8' : dtype && isFloat(dtype) ? 'float' : 'integer');
  for (const v of graph.inputs) kinds.set(v.name, kindOf(v.dtype));
  for (const [name, t] of graph.initializers) kinds.set(name, kindOf(t.dtype));
  const float = new Set<Graph['nodes'][number]>();
  // Float values computed from a DequantizeLinear's output (an int8 tensor made float again), and their readers.
  const dequantized = new Set<string>();
  const onDequantized = new Set<Graph['nodes'][number]>();
  for (const node of graph.nodes) {
    const read = node.inputs.filter(Boolean).map((v) => kinds.get(v) ?? 'float');
    const constant = node.opType === 'Constant' ? node.attributes['value'] : undefined;
    let out: Kind;
    if (node.opType === 'QuantizeLinear' || node.opType === 'DynamicQuantizeLinear' || node.opType.startsWith('QLinear') || node.opType === 'QGemm') out = 'int8';
    else if (node.opType === 'DequantizeLinear') out = 'float';
    else if (node.opType === 'Shape' || node.opType === 'Size') out = 'integer';
    else if (constant?.type === 'tensor') out = kindOf(constant.value.dtype);
    else if (node.opType === 'Cast') out = node.attributes['to']?.type === 'int' && kindOf(dtypeFromOnnx(node.attributes['to'].value)) === 'float' ? 'float' : 'integer';
    else if (read[0] === 'int8') out = 'int8';
    else if (read.length > 0 && read.every((k) => k !== 'float')) out = 'integer';
    else out = 'float';
    if (read.includes('float') && out !== 'int8') float.add(node);
    const fromInt8 = node.opType === 'DequantizeLinear' || node.inputs.some((v) => dequantized.has(v));
    if (fromInt8 && node.opType !== 'DequantizeLinear') onDequantized.add(node);
    for (const v of node.outputs) {
      if (!v) continue;
      kinds.set(v, out);
      if (fromInt8 && out === 'float') dequantized.add(v);
    }
  }
  return { onFloats: float, onDequantized };
}
