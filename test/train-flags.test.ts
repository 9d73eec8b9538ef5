/**
 * Training flags that would do nothing with the optimizer and schedule chosen are refused, not ignored,
 * and a run whose weights blew up without diverging on its training batches says so.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CIFAR_DIR } from './helpers/fixtures.js';
import { blownUpWarning, checkOptimizerFlags, learnedNothingWarning, sharedTrainOptions } from '../src/cli/train-options.js';
import { runSlim } from './helpers/cli.js';

describe('optimizer and schedule flags', () => {
  it('refuses --warmup under a constant schedule, a OneCycle without a rise, and momentum for AdamW', () => {
    // Each was accepted and did nothing (the log showed lr 0.1 throughout; AdamW has no momentum).
    expect(() => checkOptimizerFlags({ optimizer: 'sgd', schedule: 'constant', warmup: 0.3 })).toThrow(/--warmup shapes the onecycle and cosine schedules; --schedule constant has none/);
    expect(() => checkOptimizerFlags({ optimizer: 'sgd', schedule: 'onecycle', warmup: 0 })).toThrow(/--warmup 0: OneCycle needs a rise/);
    expect(() => checkOptimizerFlags({ optimizer: 'adamw', schedule: 'cosine', momentum: 0.5 })).toThrow(/--momentum is SGD's; AdamW has its own moment estimates/);
    expect(() => checkOptimizerFlags({ optimizer: 'adamw', schedule: 'cosine', nesterov: false })).toThrow(/--no-nesterov is SGD's/);
    expect(() => checkOptimizerFlags({ optimizer: 'sgd', schedule: 'cosine', warmup: 0, momentum: 0.5, nesterov: false })).not.toThrow();
  });

  it('--no-nesterov reaches the engine as classic momentum; nothing given leaves the defaults to it', () => {
    expect(sharedTrainOptions({ momentum: 0.8, nesterov: false })).toMatchObject({ momentum: 0.8, nesterov: false });
    expect(sharedTrainOptions({ nesterov: true })).not.toHaveProperty('nesterov');
  });

  it('--augment resized-crop reaches the engine as RandomResizedCrop + flip, --no-augment as none; an unknown mode is refused', async () => {
    expect(sharedTrainOptions({ augment: 'resized-crop' })).toMatchObject({ augment: { crop: 0, flip: true, resized: { minScale: 0.08 } } });
    expect(sharedTrainOptions({ augment: false })).toMatchObject({ augment: false });
    expect(sharedTrainOptions({ augment: 'crop' })).not.toHaveProperty('augment');
    const bad = await runSlim(['train', '--model', 'resnet18-cifar', '--data', 'cifar10', '--augment', 'randaugment', '--out', '/tmp/never.onnx']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--augment must be 'crop' or 'resized-crop' \(--no-augment for none\), got 'randaugment'/);
    // Both, in either order: refused, not decided by which came last.
    for (const order of [['--augment', 'resized-crop', '--no-augment'], ['--no-augment', '--augment=crop']]) {
      const both = await runSlim(['train', '--model', 'resnet18-cifar', '--data', 'cifar10', ...order, '--out', '/tmp/never.onnx']);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/--augment and --no-augment together — keep one/);
    }
    const cached = await runSlim(['distill', '--teacher', 't.onnx', '--student', 'resnet18-cifar', '--data', 'cifar10', '--cache-teacher', '--augment', 'crop', '--out', '/tmp/never.onnx']);
    expect(cached.code).toBe(2);
    expect(cached.stderr).toMatch(/--cache-teacher trains on the unaugmented images its teacher logits were cached for: --augment does not apply/);
  });

  it.runIf(existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin')))('slim train --augment resized-crop trains with it and says so in its log', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-augment-'));
    try {
      const log = path.join(dir, 'run.jsonl');
      const r = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.0625', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--train-limit', '128', '--test-limit', '64', '--epochs', '1', '--batch', '32', '--augment', 'resized-crop', '--threads', '1', '--log', log, '--out', path.join(dir, 'm.onnx')]);
      expect(r.code, r.stderr).toBe(0);
      const start = JSON.parse(readFileSync(log, 'utf8').split('\n')[0]!) as { augment: unknown };
      expect(start.augment).toEqual({ crop: 0, flip: true, resized: { min_scale: 0.08 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin')) && existsSync('/proc/stat'))('slim train on a CPU another process keeps busy says its speed is not the machine\'s', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-busy-'));
    // Another process spinning on a core for as long as training runs.
    const spinner = spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' });
    try {
      const r = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--train-limit', '2048', '--test-limit', '64', '--epochs', '2', '--batch', '64', '--threads', '1', '--json', '--out', path.join(dir, 'm.onnx')]);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as { seconds: number; other_load_cores?: number; cores?: number };
      // Shorter runs say nothing (a moment's spike is not load); this one is long enough on any CPU here.
      expect(json.seconds).toBeGreaterThan(5);
      expect(json.other_load_cores).toBeGreaterThanOrEqual(0.5);
      expect(r.stderr).toMatch(/note: other processes kept \d\.\d of the \d+ cores busy while training: its img\/s and time are lower than this machine gives when idle \(what the model learned is the same\)/);
    } finally {
      spinner.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);

  it('slim train and slim distill refuse them before reading any data', async () => {
    const train = await runSlim(['train', '--model', 'resnet18-cifar', '--data', 'cifar10', '--schedule', 'constant', '--warmup', '0.3', '--out', '/tmp/never.onnx']);
    expect(train.code).toBe(2);
    expect(train.stderr).toMatch(/--warmup shapes the onecycle and cosine schedules/);
    const distill = await runSlim(['distill', '--teacher', 't.onnx', '--student', 'resnet18-cifar', '--data', 'cifar10', '--optimizer', 'adamw', '--momentum', '0.5', '--out', '/tmp/never.onnx']);
    expect(distill.code).toBe(2);
    expect(distill.stderr).toMatch(/--momentum is SGD's/);
  });
});

describe('learnedNothingWarning', () => {
  it('warns of a run whose top-1 and losses end at chance (a frozen random backbone), not of one that moved', () => {
    expect(learnedNothingWarning(1 / 3, 1.0986, 1.0990, 3)).toMatch(/^warning: the model ends at chance \(33\.33 %\) with its losses at chance level \(1\.099 = ln 3\): it learned nothing — check --lr/);
    expect(learnedNothingWarning(0.1, 2.30, 2.31, 10)).toBeDefined();
    // Moving: the training loss fell, or the test loss rose (overfitting, blown up), or top-1 is above chance.
    expect(learnedNothingWarning(0.1, 2.1, 2.31, 10)).toBeUndefined();
    expect(learnedNothingWarning(0.1, 2.30, 2.6, 10)).toBeUndefined();
    expect(learnedNothingWarning(0.2, 2.30, 2.30, 10)).toBeUndefined();
    expect(learnedNothingWarning(0.1, undefined, 2.30, 10)).toBeUndefined();
  });
});

describe('blownUpWarning', () => {
  it('warns about a model near chance with a test loss far above chance, not about one that has not learned yet', () => {
    // 9.5 % with a test loss of 13.7 million was written without a word.
    expect(blownUpWarning(0.095, 13_668_252, 10)).toBe('warning: the model ends near chance (9.50 %) with a test loss of 1.37e+7 (chance: 2.30): its weights blew up — lower --lr (or raise --warmup) and train again');
    expect(blownUpWarning(0.1, 2.31, 10)).toBeUndefined();
    expect(blownUpWarning(0.4, 50, 10)).toBeUndefined();
    expect(blownUpWarning(0.1, Number.NaN, 10)).toBeUndefined();
  });
});
