/** Shared by the bench/prune-*.ts scripts: finding or making the model, evaluating, writing temp files. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCifar10 } from '../src/data/cifar10.js';
import type { ImageSet } from '../src/data/types.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { normalizationFor } from '../src/data/model-data.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DATA_DIR = process.env.SLIM_DATA_DIR ?? path.resolve(REPO_ROOT, '../shared/data/cifar10');
export const TRAINED_PEER = '/work/models/r18w025-torch.onnx';

/** A temp folder removed when the process exits. */
export function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-prune-bench-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The model to measure: the given file, else a random-weight ResNet18-CIFAR export of the acceptance
 * shape made by scripts/make-torch-fixtures.py (needs Debian's python3-torch at /usr/bin/python3).
 */
export function modelOrAcceptanceExport(model: string | undefined, dir: string): string {
  if (model) return model;
  const out = path.join(dir, 'resnet18-cifar-torch.onnx');
  execFileSync('/usr/bin/python3', [path.join(REPO_ROOT, 'scripts/make-torch-fixtures.py'), '--resnet18-cifar', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

export async function cifarTest(limit?: number): Promise<ImageSet> {
  if (!existsSync(path.join(DATA_DIR, 'test_batch.bin'))) throw new Error(`CIFAR-10 not found in ${DATA_DIR}; set SLIM_DATA_DIR`);
  return loadCifar10('test', { dataDir: DATA_DIR, ...(limit ? { limit } : {}) });
}

/** Top-1 of a graph on a set, with ORT (the same path as `slim eval`). */
export async function top1(graph: Graph, set: ImageSet, threads: number): Promise<number> {
  const model = await openSession(encodeModel(graph).model, { threads });
  try {
    return (await evaluate(model, set, { normalization: normalizationFor(graph, {}), batchSize: 250 })).top1;
  } finally {
    await model.close();
  }
}

export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
