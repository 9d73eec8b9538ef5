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
   * Float compute ops between int8 ones — a QuantizeLinear before them and one after — by op type: each
   * converts its tensor back to float and again to int8. A model's own input preprocessing (before the
   * first QuantizeLinear) and a float tail (after the last) are not among them.
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
    const floatOps = Object.fromEntries(Object.entries(ops).filter(([op]) => !INTEGER_OR_MOVEMENT.has(op)));
    const computesInFloat = (n: Graph['nodes'][number]): boolean => !INTEGER_OR_MOVEMENT.has(n.opType) && !NOT_COMPUTE.has(n.opType);
    const floatNodes = nodes.filter(computesInFloat).map((n) => ({ node: n.name, opType: n.opType }));
    const islandOps: Record<string, number> = {};
    for (const n of betweenQuantizeNodes(graph)) if (computesInFloat(n)) islandOps[n.opType] = (islandOps[n.opType] ?? 0) + 1;
    return { ops, floatOps, floatNodes, addsInConvs: nodes.filter(sumsResidual).length, islandOps };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Nodes with a QuantizeLinear upstream of them and one downstream. */
function betweenQuantizeNodes(graph: Graph): Graph['nodes'] {
  const index = new GraphIndex(graph);
  const quantizers = graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DynamicQuantizeLinear');
  const reach = (from: Graph['nodes'], next: (n: Graph['nodes'][number]) => Graph['nodes']): Set<Graph['nodes'][number]> => {
    const seen = new Set<Graph['nodes'][number]>();
    const stack = from.flatMap(next);
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(...next(n));
    }
    return seen;
  };
  const after = reach(quantizers, (n) => n.outputs.flatMap((v) => [...index.consumersOf(v)]));
  const before = reach(quantizers, (n) => n.inputs.flatMap((v) => { const p = index.producer.get(v); return p ? [p] : []; }));
  return graph.nodes.filter((n) => after.has(n) && before.has(n));
}
