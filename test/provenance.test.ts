import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HISTORY_KEY, modelSteps, withLastStepAmended, withStep, withStepRecord } from '../src/onnx/provenance.js';
import { ownTop1, stepLines, stepsJson } from '../src/report/provenance.js';
import { pruningRecord } from '../src/report/json-records.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { runSlim } from './helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-provenance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const training = { epochs: 4, batch: 128, device: 'cpu', test_top1: 0.6685, data: 'cifar10/test' };

describe('recorded steps', () => {
  it('are listed in the order they were made, a step made twice listed twice', () => {
    let m = withStepRecord({}, 'slimkit.zoo', { name: 'resnet18-cifar', width: 0.25, classes: 10, seed: 0 });
    m = withStepRecord(m, 'slimkit.training', training);
    m = withStepRecord(m, 'slimkit.pruning', { mode: 'structured', target: { kind: 'ratio', value: 0.5 }, importance: 'l2', params_before: 700_300 });
    m = withStepRecord(m, 'slimkit.training', { ...training, epochs: 2, test_top1: 0.65 });
    m = withStepRecord(m, 'slimkit.quantization', { method: 'minmax', activations: 'int8 symmetric', weights: 'int8 symmetric per channel', cpu: 'generic' });
    expect((JSON.parse(m[HISTORY_KEY]!) as { step: string }[]).map((s) => s.step)).toEqual(['zoo', 'training', 'pruning', 'training', 'quantization']);
    // The record under its own key is the latest.
    expect(JSON.parse(m['slimkit.training']!)).toMatchObject({ epochs: 2 });
    expect(stepLines(m)).toEqual([
      '1. built from the zoo: resnet18-cifar, width 0.25, 10 classes, seed 0',
      '2. trained 4 epochs (batch 128, cpu): test top-1 66.85 % on cifar10/test (the model before pruning, further training and quantization)',
      '3. pruned (structured, --ratio 0.5, l2 importance) from 700.3 k params',
      '4. fine-tuned 2 epochs (batch 128, cpu): test top-1 65.00 % on cifar10/test (the model before quantization)',
      '5. quantized (static int8, minmax calibration): activations int8 symmetric, weights int8 symmetric per channel, int8 layout for cpu generic',
    ]);
  });

  it('say how many images a training and a calibration used', () => {
    let m = withStepRecord({}, 'slimkit.training', { ...training, train_images: 500, eval_images: 200 });
    m = withStepRecord(m, 'slimkit.quantization', { method: 'minmax', calibration_images: 64, activations: 'uint8 asymmetric', weights: 'int8 symmetric per channel' });
    expect(stepLines(m)).toEqual([
      '1. trained 4 epochs on 500 images (batch 128, cpu): test top-1 66.85 % on 200 images of cifar10/test (the model before quantization)',
      '2. quantized (static int8, minmax calibration on 64 images): activations uint8 asymmetric, weights int8 symmetric per channel',
    ]);
    // A teacher's top-1 too (it read as the whole test set's).
    expect(stepLines(withStepRecord({}, 'slimkit.distillation', { teacher: 't.onnx', teacher_top1: 0.688, eval_images: 500, temperature: 4, alpha: 0.5 }))).toEqual([
      '1. distilled from t.onnx (teacher top-1 68.80 % on 500 test images), temperature 4, alpha 0.5',
    ]);
    expect(stepLines(withStepRecord({}, 'slimkit.qat', { epochs: 3, learnable_scales: false, engine_top1: 0.68, eval_images: 300, distilled: true }))).toEqual([
      '1. quantization-aware training for 3 epochs (distilled): engine top-1 68.00 % on 300 test images (fake-quantized, as trained)',
    ]);
  });

  it("read the last step of a kind from its own key, which a later pass may amend (the int8 layout re-laid)", () => {
    const m = withStepRecord({}, 'slimkit.quantization', { method: 'mse', activations: 'uint8 asymmetric', weights: 'int8 symmetric per channel', cpu: 'avx2' });
    const relaid = { ...m, 'slimkit.quantization': JSON.stringify({ ...JSON.parse(m['slimkit.quantization']!), cpu: 'generic' }) };
    expect(stepLines(relaid)).toEqual(['1. quantized (static int8, mse calibration): activations uint8 asymmetric, weights int8 symmetric per channel, int8 layout for cpu generic']);
  });

  it("say a top-1 is of the model before every later step that changed the weights", () => {
    let m = withStepRecord({}, 'slimkit.training', training);
    m = withStepRecord(m, 'slimkit.pruning', { mode: 'unstructured', sparsity: 0.5, top1_before: 0.6685, test_top1: 0.66, eval_images: 2000, data: 'cifar10/test' });
    m = withStepRecord(m, 'slimkit.quantization', { mode: 'fp16' });
    expect(stepLines(m)).toEqual([
      '1. trained 4 epochs (batch 128, cpu): test top-1 66.85 % on cifar10/test (the model before pruning and float16 conversion)',
      '2. pruned (unstructured, 50.0 % zeros): test top-1 66.85 % → 66.00 % on 2,000 images of cifar10/test (the model before float16 conversion)',
      '3. converted to float16',
    ]);
  });

  it("an int8 model's own top-1, scored once written (slim quantize --eval), is its line's and the one a bundle states; an earlier step's is not", () => {
    const pruned = withStep(withStep(buildZooModel('resnet18-cifar', { width: 0.125 }), 'slimkit.training', training), 'slimkit.pruning', { mode: 'structured', top1_before: 0.6685, test_top1: 0.64, eval_images: 2000, data: 'cifar10/test' });
    expect(ownTop1(pruned.metadata)).toEqual({ top1: 0.64, images: 2000, data: 'cifar10/test' });
    const quantized = withStep(pruned, 'slimkit.quantization', { method: 'mse', activations: 'uint8 asymmetric', weights: 'int8 symmetric per channel' });
    // The pruning's 64 % is the float model's.
    expect(ownTop1(quantized.metadata)).toBeUndefined();
    const scored = withLastStepAmended(quantized, 'slimkit.quantization', { scored: { top1: 0.6345, images: 2000, data: 'cifar10/test' } });
    expect(ownTop1(scored.metadata)).toEqual({ top1: 0.6345, images: 2000, data: 'cifar10/test' });
    expect(stepLines(scored.metadata).at(-1)).toBe('4. quantized (static int8, mse calibration): activations uint8 asymmetric, weights int8 symmetric per channel: top-1 63.45 % on 2,000 images of cifar10/test (ONNX Runtime)');
    // Amended in place: the history holds the step once, with the score.
    expect(modelSteps(scored.metadata).map((st) => st.key)).toEqual(['slimkit.zoo', 'slimkit.training', 'slimkit.pruning', 'slimkit.quantization']);
    expect(JSON.parse(scored.metadata[HISTORY_KEY]!).at(-1)).toMatchObject({ step: 'quantization', scored: { top1: 0.6345 } });
    expect(withLastStepAmended(pruned, 'slimkit.qat', { scored: { top1: 1 } })).toBe(pruned);
  });

  it("pruning records (one builder for slim prune and a recipe's stage) read back as their lines", () => {
    const before = { params: 700_300, macs: 10_000_000 };
    const structured = pruningRecord({ mode: 'structured', target: { kind: 'macs', value: 0.5 }, importance: 'l2' }, 2, before, { test_top1: 0.61 });
    expect(structured).toEqual({ mode: 'structured', target: { kind: 'macs', value: 0.5 }, importance: 'l2', finetune_epochs: 2, params_before: 700_300, macs_before: 10_000_000, test_top1: 0.61 });
    const nm = pruningRecord({ mode: 'unstructured', nm: '2:4' }, 0, before, { top1_before: 0.66, test_top1: 0.64, eval_images: 500, data: 'cifar10/test' });
    expect(nm).toEqual({ mode: 'unstructured', nm: '2:4', params_before: 700_300, macs_before: 10_000_000, top1_before: 0.66, test_top1: 0.64, eval_images: 500, data: 'cifar10/test' });
    expect(stepLines(withStepRecord({}, 'slimkit.pruning', nm))).toEqual(['1. pruned (unstructured, 2:4 sparsity) from 700.3 k params, 10.00 M MACs: test top-1 66.00 % → 64.00 % on 500 images of cifar10/test']);
    // Renormalization and distillation during the fine-tune are part of how it was made.
    const renormalized = pruningRecord({ mode: 'structured', target: { kind: 'macs', value: 0.5 }, importance: 'l2' }, 3, before, { test_top1: 0.6 }, { renormalizedLayers: 20, distilled: true, finetuneImages: 20000 });
    expect(renormalized).toMatchObject({ renormalized_layers: 20, finetune_epochs: 3, finetune_images: 20000, distilled: true });
    expect(stepLines(withStepRecord({}, 'slimkit.pruning', renormalized))).toEqual(['1. pruned (structured, --target-macs 0.5, l2 importance) from 700.3 k params, 10.00 M MACs, 20 layers after the cuts renormalized, fine-tuned 3 epochs on 20,000 images distilling the unpruned model: test top-1 60.00 %']);
  });

  it('without a history (files written before it was kept) follow the order the commands run, unreadable records included', () => {
    const m = { 'slimkit.quantization': '{"method":"mse","activations":"uint8 asymmetric","weights":"int8 symmetric per channel"}', 'slimkit.training': 'not json', 'slimkit.mean': '[0.5]' };
    expect(modelSteps(m).map((s) => s.key)).toEqual(['slimkit.training', 'slimkit.quantization']);
    expect(modelSteps(m)[0]!.record).toEqual({});
    expect(stepLines(m)).toEqual(['1. trained', '2. quantized (static int8, mse calibration): activations uint8 asymmetric, weights int8 symmetric per channel']);
    expect(stepsJson(m)).toEqual([{ step: 'training' }, { step: 'quantization', method: 'mse', activations: 'uint8 asymmetric', weights: 'int8 symmetric per channel' }]);
  });

  it('a history with entries slimkit does not know lists the ones it does; records it misses come first', () => {
    const m = { 'slimkit.zoo': '{"name":"resnet18-cifar"}', 'slimkit.training': JSON.stringify(training), [HISTORY_KEY]: '[{"step":"nonsense"},"slimkit.qat",7,{"step":"training","epochs":1}]' };
    expect(modelSteps(m)).toEqual([{ key: 'slimkit.zoo', record: { name: 'resnet18-cifar' } }, { key: 'slimkit.training', record: training }]);
    expect((JSON.parse(withStepRecord(m, 'slimkit.pruning', {})[HISTORY_KEY]!) as { step: string }[]).map((s) => s.step)).toEqual(['zoo', 'training', 'pruning']);
  });
});

describe('slim info: how slimkit made the model', () => {
  it('a trained zoo model, pruned and converted by the CLI, lists the steps in order and says whose top-1 is recorded', async () => {
    const trained = path.join(dir, 'trained.onnx');
    // The training record as `slim train` writes it (training itself is tested elsewhere; this is about the later steps' records).
    await writeModel(withStep(buildZooModel('resnet18-cifar', { width: 0.125, classes: 10 }), 'slimkit.training', training), trained);
    const pruned = path.join(dir, 'pruned.onnx');
    expect((await runSlim(['prune', trained, '-o', pruned, '--structured', '--ratio', '0.5', '--round-to', '1'])).code).toBe(0);
    const fp16 = path.join(dir, 'fp16.onnx');
    expect((await runSlim(['quantize', pruned, '-o', fp16, '--mode', 'fp16'])).code).toBe(0);

    const pruning = JSON.parse((await readModel(pruned)).metadata['slimkit.pruning']!) as Record<string, unknown>;
    expect(pruning).toMatchObject({ mode: 'structured', target: { kind: 'ratio', value: 0.5 }, importance: 'l2' });
    const text = (await runSlim(['info', fp16])).stdout;
    expect(text).toMatch(/ {2}made by slimkit\n {4}1\. built from the zoo: resnet18-cifar, width 0\.125, 10 classes, seed 0\n {4}2\. trained 4 epochs \(batch 128, cpu\): test top-1 66\.85 % on cifar10\/test \(the model before pruning and float16 conversion\)\n {4}3\. pruned \(structured, --ratio 0\.5, l2 importance\) from [\d.]+ k params, [\d.]+ M MACs\n {4}4\. converted to float16\n/);
    const doc = JSON.parse((await runSlim(['info', fp16, '--json'])).stdout) as { history: { step: string }[] };
    expect(doc.history.map((s) => s.step)).toEqual(['zoo', 'training', 'pruning', 'quantization']);
  }, 120_000);

  it('a model slimkit did not make has no such lines', async () => {
    const plain = path.join(dir, 'plain.onnx');
    const g = buildZooModel('resnet18-cifar', { width: 0.125, classes: 10 });
    await writeModel({ ...g, metadata: {} }, plain);
    const r = await runSlim(['info', plain]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('made by slimkit');
  });
});
