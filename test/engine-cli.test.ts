import './helpers/engine-env.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registerTrain } from '../src/cli/commands/train.js';
import { nativeAvailable } from '../src/engine/native.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { buildZooModel } from '../src/zoo/index.js';
import { runCommandInProcess } from './helpers/in-process.js';

const DATA_DIR = process.env.SLIM_DATA_DIR ?? path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'cifar10');
const dir = mkdtempSync(path.join(tmpdir(), 'slim-train-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const slimTrain = (args: string[]): Promise<string> => runCommandInProcess(registerTrain, 'train', args);

describe.skipIf(!nativeAvailable())('slim train', () => {
  it('trains a zoo model, writes a BN-folded ONNX and ONNX Runtime agrees with the engine', async () => {
    const out = path.join(dir, 'r18.onnx');
    const stdout = await slimTrain([
      '--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', DATA_DIR,
      '--train-limit', '1024', '--test-limit', '500', '--epochs', '2', '--batch', '64', '--lr', '0.05', '--threads', '2',
      '--checkpoint-dir', path.join(dir, 'ckpt'), '--log', path.join(dir, 'log.jsonl'), '--out', out, '--json',
    ]);
    const result = JSON.parse(stdout) as { test_top1: number; onnxruntime_top1: number; epochs: number; steps: number; gpu_seconds: number; precision: string };
    expect(result.epochs).toBe(2);
    // --precision auto, resolved: a run says what it trained in.
    expect(result.precision).toBe('fp32');
    expect(result.steps).toBe(32);
    expect(result.gpu_seconds).toBe(0);
    expect(result.test_top1).toBeGreaterThan(0.1);
    // ±0.05 percentage points on 500 images: the same predictions.
    expect(Math.abs(result.onnxruntime_top1 - result.test_top1)).toBeLessThanOrEqual(0.0005);
    const written = await readModel(out);
    expect(written.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    // The images its top-1 is on (--test-limit 500): the history says how many.
    expect(JSON.parse(written.metadata['slimkit.training']!)).toMatchObject({ epochs: 2, device: 'cpu', eval_images: 500, train_images: 1024 });
    expect(existsSync(path.join(dir, 'ckpt', 'last.ckpt'))).toBe(true);

    // --resume of a finished run: nothing left to train, the same result.
    const again = JSON.parse(await slimTrain([
      '--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', DATA_DIR,
      '--train-limit', '1024', '--test-limit', '500', '--epochs', '2', '--batch', '64', '--lr', '0.05', '--threads', '2',
      '--checkpoint-dir', path.join(dir, 'ckpt'), '--resume', '--out', path.join(dir, 'again.onnx'), '--json', '--no-verify',
    ])) as { test_top1: number; resumed_from_epoch: number };
    expect(again.resumed_from_epoch).toBe(2);
    expect(again.test_top1).toBe(result.test_top1);
  }, 180_000);

  it('trains a BN-folded ONNX with BN re-inserted and writes it folded again, as ONNX Runtime scores it', async () => {
    const folded = path.join(dir, 'folded.onnx');
    await writeModel(foldBatchNorm(buildZooModel('resnet18-cifar', { width: 0.125, seed: 1 })), folded);
    const before = await readModel(folded);
    const out = path.join(dir, 'folded-trained.onnx');
    const stderr: string[] = [];
    const stdout = await runCommandInProcess(registerTrain, 'train', [
      '--model', folded, '--data', 'cifar10', '--data-dir', DATA_DIR, '--train-limit', '512', '--test-limit', '500',
      '--epochs', '1', '--batch', '64', '--lr', '0.05', '--threads', '2', '--out', out, '--json',
    ], { onStderr: (line) => stderr.push(line) });
    expect(stderr.join('')).toMatch(/training with BN re-inserted after 20 of 20 Conv\(s\), /);
    const result = JSON.parse(stdout) as { test_top1: number; onnxruntime_top1: number };
    expect(Math.abs(result.onnxruntime_top1 - result.test_top1)).toBeLessThanOrEqual(0.0005);
    const written = await readModel(out);
    expect(written.nodes.map((n) => n.opType)).toEqual(before.nodes.map((n) => n.opType));
  }, 120_000);

  it('rejects bad flags as usage errors', async () => {
    await expect(slimTrain(['--model', 'resnet18-cifar', '--data', 'cifar10', '--out', 'x.onnx', '--device', 'tpu'])).rejects.toThrow(/--device must be one of cpu, cuda/);
    await expect(slimTrain(['--model', 'nope', '--data', 'cifar10', '--data-dir', DATA_DIR, '--out', 'x.onnx'])).rejects.toThrow(/neither a zoo model nor a model file/);
    const small = ['--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', DATA_DIR, '--out', 'x.onnx', '--epochs', '1', '--train-limit', '64'];
    await expect(slimTrain([...small, '--cuda-graphs'])).rejects.toThrow(/--cuda-graphs needs --device cuda/);
    await expect(slimTrain([...small, '--precision', 'fp16'])).rejects.toThrow(/fp16 training needs loss scaling.*use --precision bf16/);
    await expect(slimTrain([...small, '--precision', 'int4'])).rejects.toThrow(/--precision must be one of auto, fp32, bf16, fp16/);
    await expect(slimTrain([...small, '--cuda-graphs', '--nproc', '2'])).rejects.toThrow(/--cuda-graphs does not work with data-parallel training/);
  });
});
