/**
 * Unstructured and 2:4 sparsity, honestly: dense file bytes (unchanged), gzip bytes and the sparse-
 * storage estimate, batch-1 latency in ORT (dense kernels: expect ≈ 1.0×) and, with a trained model,
 * top-1 without fine-tuning. One JSON line.
 *
 *   npx tsx bench/prune-sparsity.ts [--model /work/models/r18w025-torch.onnx] [--sparsity 0.5,0.8,0.9]
 *        [--scope layer,global] [--limit 10000] [--threads 2] [--runs 180]
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compareLatency, pruneUnstructured, sizeReport, type Scope, type UnstructuredOptions } from '../src/compress/prune/index.js';
import { encodeModel } from '../src/onnx/io.js';
import { loadModel } from '../src/onnx/validate.js';
import { cifarTest, emit, modelOrAcceptanceExport, scratchDir, top1, TRAINED_PEER } from './prune-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    sparsity: { type: 'string', default: '0.5,0.8,0.9' },
    scope: { type: 'string', default: 'layer,global' },
    limit: { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '180' },
  },
});
const model = values.model ?? (existsSync(TRAINED_PEER) ? TRAINED_PEER : undefined);
const file = modelOrAcceptanceExport(model, scratchDir());
const { graph } = await loadModel(file);
const threads = Number(values.threads);
const set = model ? await cifarTest(Number(values.limit)) : undefined;
const base = sizeReport(graph);
const baseTop1 = set ? await top1(graph, set, threads) : undefined;

const settings: { label: string; options: UnstructuredOptions }[] = [];
for (const scope of values.scope!.split(',') as Scope[]) {
  for (const s of values.sparsity!.split(',').map(Number)) settings.push({ label: `${scope} ${s}`, options: { sparsity: s, scope } });
}
settings.push({ label: '2:4', options: { nm: { n: 2, m: 4 } } });

const variants = [];
const models: Uint8Array[] = [encodeModel(graph).model];
for (const { label, options } of settings) {
  const r = pruneUnstructured(graph, options);
  const bytes = encodeModel(r.graph).model;
  models.push(bytes);
  const size = sizeReport(r.graph, { bytes, ...(options.nm ? { nm: { ...options.nm, tensors: new Set(r.tensors.map((t) => t.name)) } } : {}) });
  const acc = set ? await top1(r.graph, set, threads) : undefined;
  process.stderr.write(`${label}: sparsity ${(r.sparsity * 100).toFixed(1)} %, gzip ${(size.gzipBytes / base.gzipBytes).toFixed(3)}×, sparse est. ${(size.sparseBytesEstimate / base.denseBytes).toFixed(3)}×${acc !== undefined ? `, top-1 ${(acc * 100).toFixed(2)} %` : ''}\n`);
  variants.push({
    setting: label,
    sparsity: r.sparsity,
    dense_bytes: size.denseBytes,
    gzip_bytes: size.gzipBytes,
    sparse_bytes_estimate: size.sparseBytesEstimate,
    ...(acc !== undefined ? { top1: acc, drop_pt: (baseTop1! - acc) * 100 } : {}),
  });
}
process.stderr.write(`timing ${models.length} models …\n`);
const latency = await compareLatency(models, { threads, runs: Number(values.runs) });
emit({
  bench: 'prune-sparsity',
  model: model ?? 'random-weight ResNet18-CIFAR export',
  dense_bytes: base.denseBytes,
  gzip_bytes: base.gzipBytes,
  latency_ms: latency[0],
  ...(baseTop1 !== undefined ? { top1: baseTop1 } : {}),
  variants: variants.map((v, i) => ({ ...v, latency_ratio: latency[i + 1]! / latency[0]! })),
});
