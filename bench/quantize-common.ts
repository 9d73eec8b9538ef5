/** Shared by the bench/quantize-*.ts scripts: data, evaluation, the acceptance-shaped export, output. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCifar10 } from '../src/data/cifar10.js';
import type { ImageSet, Normalization } from '../src/data/types.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { normalizationFor } from '../src/data/model-data.js';
import { imageFeeds } from '../src/compress/quantize/feeds.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DATA_DIR = process.env.SLIM_DATA_DIR ?? path.resolve(REPO_ROOT, '../shared/data/cifar10');
/** The PyTorch-trained ResNet18-CIFAR width 0.25 made by bench/make-trained-resnet.py. */
export const TRAINED_PEER = '/work/models/r18w025-torch.onnx';

/** A temp folder removed when the process exits (set SLIM_KEEP_BENCH=1 to keep the models for a look). */
export function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-quantize-bench-'));
  if (!process.env['SLIM_KEEP_BENCH']) process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A random-weight ResNet18-CIFAR export of the acceptance shape (width 1, BN folded, Gemm head), made by PyTorch. */
export function acceptanceExport(dir: string): string {
  const out = path.join(dir, 'resnet18-cifar-torch.onnx');
  execFileSync('/usr/bin/python3', [path.join(REPO_ROOT, 'scripts/make-torch-fixtures.py'), '--resnet18-cifar', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

export async function cifar(split: 'train' | 'test', limit?: number): Promise<ImageSet> {
  if (!existsSync(path.join(DATA_DIR, 'test_batch.bin'))) throw new Error(`CIFAR-10 not found in ${DATA_DIR}; set SLIM_DATA_DIR`);
  return loadCifar10(split, { dataDir: DATA_DIR, ...(limit ? { limit } : {}) });
}

/** Top-1 and the per-image predictions of a graph on a set (the path `slim eval` takes). */
export async function evaluateGraph(graph: Graph, set: ImageSet, threads: number): Promise<{ top1: number; predictions: Uint16Array }> {
  const model = await openSession(encodeModel(graph).model, { threads });
  try {
    const r = await evaluate(model, set, { normalization: normalizationFor(graph, {}), batchSize: 250, keepPredictions: true });
    return { top1: r.top1, predictions: r.predictions! };
  } finally {
    await model.close();
  }
}

export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * ONNX Runtime's Python quantizer (bench/quantize-ort-python.py, run by `python`) on `model` with the
 * very images slimkit calibrates on, written as one float32 file: its output file and time per method.
 */
export function ortPythonQuantize(
  python: string,
  model: string,
  calib: ImageSet,
  feed: { inputName: string; normalization: Normalization },
  dir: string,
  methods: string,
): Record<string, { file: string; seconds: number }> {
  const calibFile = path.join(dir, 'calib.f32');
  const all = new Float32Array(calib.labels.length * calib.imageShape.reduce((a, b) => a * b, 1));
  let offset = 0;
  for (const f of imageFeeds(calib, { ...feed, batchSize: 256 })) {
    all.set(f[feed.inputName]!.data as Float32Array, offset);
    offset += f[feed.inputName]!.data.length;
  }
  writeFileSync(calibFile, all);
  const out = execFileSync(python, [path.join(REPO_ROOT, 'bench/quantize-ort-python.py'), '--model', model, '--calib', calibFile, '--count', String(calib.labels.length), '--out', dir, '--methods', methods], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, { file: string; seconds: number }>;
}
