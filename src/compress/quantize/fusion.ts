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
    const nodes = decodeModel(readFileSync(file)).nodes;
    for (const n of nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
    const floatOps = Object.fromEntries(Object.entries(ops).filter(([op]) => !INTEGER_OR_MOVEMENT.has(op)));
    const floatNodes = nodes.filter((n) => !INTEGER_OR_MOVEMENT.has(n.opType) && !NOT_COMPUTE.has(n.opType)).map((n) => ({ node: n.name, opType: n.opType }));
    return { ops, floatOps, floatNodes, addsInConvs: nodes.filter(sumsResidual).length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
