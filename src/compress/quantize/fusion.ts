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
}

export async function ortKernels(model: Uint8Array | string, options: { threads?: number } = {}): Promise<OrtKernels> {
  const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-ort-optimized-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const session = await openSession(model, { threads: options.threads ?? 1, optimizedModelFilePath: file, label: 'quantized model' });
    await session.close();
    const ops: Record<string, number> = {};
    for (const n of decodeModel(readFileSync(file)).nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
    const floatOps = Object.fromEntries(Object.entries(ops).filter(([op]) => !INTEGER_OR_MOVEMENT.has(op)));
    return { ops, floatOps };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
