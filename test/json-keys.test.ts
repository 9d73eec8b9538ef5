import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { readManifest, type RunManifest } from '../src/pipeline/manifest.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR, fixturePath } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-json-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hasCifar = existsSync(path.join(CIFAR_DIR, 'test_batch.bin'));

/** Maps keyed by data (op names, dtypes, node names, metadata keys, method names): their keys are not ours to style. */
const DATA_KEYED = new Set(['opsets', 'op_histogram', 'weight_dtypes', 'op_delta', 'ort_ops', 'ort_float_ops', 'metadata', 'frozen', 'output_sqnr_db', 'method_scores']);

/** Every key path in `doc` that is not snake_case (lower case, digits, underscores). */
function camelKeys(doc: unknown, at = ''): string[] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => camelKeys(v, `${at}[${i}]`));
  if (!doc || typeof doc !== 'object') return [];
  return Object.entries(doc).flatMap(([k, v]) => [
    ...(/^[a-z0-9_]+$/.test(k) ? [] : [`${at}.${k}`]),
    ...(DATA_KEYED.has(k) ? [] : camelKeys(v, `${at}.${k}`)),
  ]);
}

describe('JSON documents', () => {
  const model = fixturePath('torch-tiny-resnet.onnx');
  // A 32×32 model for the commands that read CIFAR-10.
  const cifarModel = path.join(dir, 'cifar.onnx');
  beforeAll(() => writeModel(buildZooModel('resnet18-cifar', { width: 0.25, classes: 10 }), cifarModel));
  const commands: [string, string[]][] = [
    ['info', ['info', model]],
    ['zoo --list', ['zoo', '--list']],
    ['zoo build', ['zoo', 'resnet18-cifar', '--width', '0.25', '-o', path.join(dir, 'zoo.onnx')]],
    ['optimize', ['optimize', model, '-o', path.join(dir, 'opt.onnx')]],
    ['prune --analyze', ['prune', model, '--analyze']],
    ['prune --structured', ['prune', model, '-o', path.join(dir, 'p.onnx'), '--structured', '--target-macs', '0.6', '--round-to', '1']],
    ['prune --unstructured', ['prune', model, '-o', path.join(dir, 's.onnx'), '--unstructured', '--sparsity', '0.5']],
    ['quantize dynamic', ['quantize', model, '-o', path.join(dir, 'd.onnx'), '--mode', 'dynamic']],
    ['doctor', ['doctor']],
    ['deploy', ['deploy', model, '--target', 'web', '--out', path.join(dir, 'web')]],
    ['an error', ['info', path.join(dir, 'missing.onnx')]],
  ];
  if (hasCifar) {
    commands.push(['eval', ['eval', cifarModel, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '64']]);
    commands.push(['quantize static --report', ['quantize', cifarModel, '-o', path.join(dir, 'q.onnx'), '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '32', '--report', path.join(dir, 'q-report')]]);
  }

  it.each(commands)('%s --json: every key is snake_case', async (name, args) => {
    const r = await runSlim([...args, '--json']);
    expect(r.code, r.stdout).toBe(name === 'an error' ? 1 : 0);
    const doc = JSON.parse(r.stdout) as unknown;
    expect(camelKeys(doc)).toEqual([]);
  }, 120_000);

  it.runIf(hasCifar)('the quantization report file too', () => {
    const report = JSON.parse(readFileSync(path.join(dir, 'q-report.json'), 'utf8')) as unknown;
    expect(camelKeys(report)).toEqual([]);
  });

  it('a run folder written before (camelCase histories, prune steps and op names) reads as this version writes it', async () => {
    const run = path.join(dir, 'old-run');
    mkdirSync(run);
    const base = { status: 'done', seconds: 1, gpu_seconds: 0, cost: 0, device: 'cpu' };
    const epoch = { epoch: 1, trainLoss: 1.5, trainAccuracy: 0.4, testLoss: 1.6, testAccuracy: 0.45, lr: 0.1, seconds: 10, trainSeconds: 9, imagesPerSecond: 500 };
    const manifest = {
      version: 1, name: 'old', recipe: { file: 'r.yaml', sha256: 'x', text: '' }, data: { name: 'cifar10', train_images: 1, test_images: 1, sha256: 'x' },
      created: '', updated: '', machine: { cpu: '', cores: 2, os: '', node: '', slimkit: '' }, wall_seconds: 1, complete: true, gpu_price_per_hour: 2.5,
      stages: [
        { ...base, id: 'fp32', kind: 'train', key: 'a', result: { history: [epoch], test_top1: 0.45, steps: 1, train_images: 1, eval_images: 1 } },
        { ...base, id: 'pruned', kind: 'prune', key: 'b', result: { mode: 'structured', macs_before: 2, macs_after: 1, params_before: 2, params_after: 1, steps: [{ step: 1, macs: 1, testAccuracy: 0.4, seconds: 1 }], finetune_epochs: 1 } },
        { ...base, id: 'int8', kind: 'quantize', key: 'c', result: { mode: 'static', float_nodes: [{ node: 'n', opType: 'Resize', reason: 'r' }], sensitivity: [{ layer: 'conv1', opType: 'Conv', score: 40, agreement: 1 }], qat: { history: [epoch], test_top1: 0.45, steps: 1, train_images: 1, eval_images: 1 } } },
      ],
    };
    writeFileSync(path.join(run, 'manifest.json'), JSON.stringify(manifest));
    const read = (await readManifest(run)) as RunManifest;
    expect(camelKeys(read.stages)).toEqual([]);
    const [train, prune, quantize] = read.stages;
    expect(train!.kind === 'train' && train!.result!.history[0]).toEqual({ epoch: 1, train_loss: 1.5, train_top1: 0.4, test_loss: 1.6, test_top1: 0.45, lr: 0.1, seconds: 10, train_seconds: 9, images_per_second: 500 });
    expect(prune!.kind === 'prune' && prune!.result!.steps[0]).toEqual({ step: 1, macs: 1, test_top1: 0.4, seconds: 1 });
    expect(quantize!.kind === 'quantize' && quantize!.result!.sensitivity![0]).toEqual({ layer: 'conv1', op_type: 'Conv', score: 40, agreement: 1 });
    // The report of such a folder renders, with its curves.
    const report = await runSlim(['report', run, '--json']);
    expect(report.code, report.stderr).toBe(0);
    expect(camelKeys(JSON.parse(report.stdout))).toEqual([]);
  }, 120_000);
});
