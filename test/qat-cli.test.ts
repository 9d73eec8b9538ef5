import './helpers/engine-env.js';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qatBelowPtqLine, registerQuantize } from '../src/cli/commands/quantize.js';
import { nativeAvailable } from '../src/engine/native.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { runSlim } from './helpers/cli.js';
import { smallCnn } from './helpers/engine-nets.js';
import { CIFAR_DIR } from './helpers/fixtures.js';
import { runCommandInProcess } from './helpers/in-process.js';
import { EXACT_ON_HOST, SATURATING_HOST } from './helpers/int8-host.js';
import { modelSteps } from '../src/onnx/provenance.js';
import { qatBelowStartLine } from '../src/compress/qat/index.js';

const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));
const dir = mkdtempSync(path.join(tmpdir(), 'slim-qat-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const slimQuantize = (args: string[]): Promise<string> => runCommandInProcess(registerQuantize, 'quantize', args);

interface QuantizeJson {
  top1_before: number;
  top1_after: number;
  ort_ops: Record<string, number>;
  ort_float_ops: Record<string, number>;
  qat: { epochs: number; steps: number; learnable_scales: boolean; distilled: boolean; top1_ptq: number; engine_top1: number; history: unknown[] };
}

describe.skipIf(!nativeAvailable() || !hasCifar)('slim quantize --qat', () => {
  const model = path.join(dir, 'float.onnx');
  const data = ['--data', 'cifar10', '--data-dir', CIFAR_DIR, '--train-limit', '512', '--test-limit', '256', '--eval-limit', '256', '--batch', '64', '--threads', '2'];

  beforeAll(async () => {
    await writeModel(foldBatchNorm(smallCnn({ seed: 4, widths: [8, 16, 16] })), model);
  });

  it('calibrates on --data, fine-tunes the int8 model and writes it; ONNX Runtime scores what the engine trained', async () => {
    const out = path.join(dir, 'qat.int8.onnx');
    // ORT computes the int8 model exactly, as the engine trains it, only where its int8 sums cannot
    // saturate: on an x64 CPU without VNNI with uint8 weights (helpers/int8-host.ts; 3 of 256 images
    // apart there otherwise, once the range method was chosen on exact kernels).
    const r = JSON.parse(await slimQuantize([model, '-o', out, '--qat', '--epochs', '2', '--lsq', ...data, ...(EXACT_ON_HOST.cpu ? ['--cpu', EXACT_ON_HOST.cpu] : []), '--json'])) as QuantizeJson;
    // Distilled from the float model unless --no-distill.
    expect(r.qat).toMatchObject({ epochs: 2, steps: 16, learnable_scales: true, distilled: true });
    expect(r.qat.history).toHaveLength(2);
    expect(r.qat.top1_ptq).toBeGreaterThanOrEqual(0);
    // The QAT model's int8 top-1 on ORT is the engine's fake-quantized top-1 (256 images: within 2).
    expect(Math.abs(r.top1_after - r.qat.engine_top1)).toBeLessThanOrEqual(2 / 256);
    expect(r.ort_ops['QLinearConv']).toBe(3);
    expect(r.ort_float_ops).toEqual({});
    const written = await readModel(out);
    expect(JSON.parse(written.metadata['slimkit.qat']!)).toMatchObject({ epochs: 2, learnable_scales: true });
    // Recorded after the post-training quantization it started from.
    expect(modelSteps(written.metadata).map((s) => s.key).slice(-2)).toEqual(['slimkit.quantization', 'slimkit.qat']);
    expect(written.nodes.some((n) => n.opType === 'QuantizeLinear' && written.initializers.has(n.inputs[0]!))).toBe(false);
  }, 300_000);

  it('--bn-epochs trains the model\'s own BatchNorm live first, then ships it folded into the int8 Convs', async () => {
    const withBn = path.join(dir, 'float-bn.onnx');
    await writeModel(smallCnn({ seed: 4, widths: [8, 16, 16] }), withBn);
    const out = path.join(dir, 'qat-bn.int8.onnx');
    // Without --test-limit the epochs score on --eval-limit's 256 images too.
    const withoutTestLimit = data.filter((a, i) => a !== '--test-limit' && data[i - 1] !== '--test-limit');
    const ck = path.join(dir, 'qat-bn-ck');
    const args = [withBn, '-o', out, '--qat', '--epochs', '2', '--bn-epochs', '1', '--no-distill', ...withoutTestLimit, '--checkpoint-dir', ck];
    const r = JSON.parse(await slimQuantize([...args, '--json'])) as QuantizeJson;
    expect(r.qat).toMatchObject({ epochs: 2, steps: 16, distilled: false });
    expect(Math.abs(r.qat.engine_top1 * 256 - Math.round(r.qat.engine_top1 * 256))).toBeLessThan(1e-6);
    expect(Math.abs(r.top1_after - r.qat.engine_top1)).toBeLessThanOrEqual(2 / 256);
    expect(r.ort_ops['QLinearConv']).toBe(3);
    const written = await readModel(out);
    expect(written.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    expect(JSON.parse(written.metadata['slimkit.qat']!)).toMatchObject({ bn_live_epochs: 1 });
    // A --resume with other settings is refused before calibrating, each phase's checkpoint in the flags that
    // set it (the phases count their own epochs and the folded one shuffles with another seed).
    const resumed = async (extra: string[]): Promise<string> => {
      // The flags in `extra` (flag, value pairs) replace the run's own.
      const flags = extra.filter((_, i) => i % 2 === 0);
      const kept = args.filter((a, i) => !flags.includes(a) && !flags.includes(args[i - 1]!));
      const run = await runSlim(['quantize', ...kept, ...extra, ...(flags.includes('--resume') ? [] : ['--resume'])]);
      expect(run.code).toBe(2);
      expect(run.stderr).not.toMatch(/^calibrate:/m);
      return run.stderr.trim();
    };
    expect(await resumed(['--epochs', '3'])).toMatch(/qat-bn-ck\/folded\/last\.ckpt: the checkpoint was made by a run with other settings \(--epochs: 2 then, 3 now\)/);
    expect(await resumed(['--bn-epochs', '2'])).toMatch(/qat-bn-ck\/folded\/last\.ckpt: the checkpoint was made by a run with other settings \(--bn-epochs: 1 then, 2 now\)/);
    expect(await resumed(['--lr', '0.01'])).toMatch(/other settings \(--lr: 0\.001 then, 0\.01 now\)/);
    expect(await resumed(['--bn-epochs', '0'])).toMatch(/qat-bn-ck\/folded\/last\.ckpt: the checkpoint was made by a run with --bn-epochs, and this one has none — resume with the same options as then/);
    // The same settings resume: both phases' checkpoints pass, and the finished run is written from them.
    const same = JSON.parse(await slimQuantize([...args, '--resume', '--json'])) as QuantizeJson;
    expect(same.qat).toMatchObject({ epochs: 2, resumed_from_epoch: 2 });
    // A checkpoint file cannot say which phase it holds: refused before the model is read.
    expect(await resumed(['--resume', path.join(ck, 'folded', 'last.ckpt')])).toMatch(/a checkpoint file \(--resume FILE\) cannot say which phase of a --bn-epochs run it belongs to/);
    const tooMany = await runSlim(['quantize', withBn, '-o', path.join(dir, 'x.onnx'), '--qat', '--epochs', '1', '--bn-epochs', '2', ...data]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/--bn-epochs must be a whole number from 0 to --epochs/);
    // A BN-folded model (what torch.onnx and slim train write) has no BN to train live: said before calibrating.
    const folded = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--qat', '--epochs', '1', '--bn-epochs', '1', ...data]);
    expect(folded.code).toBe(2);
    expect(folded.stderr).toMatch(/--bn-epochs trains the model's BatchNormalization live, and .*float\.onnx has none .* — drop --bn-epochs/);
    expect(folded.stderr).not.toMatch(/calibrat/);
    // A folder of class folders (no train/) is named as --data's, as training names it — not as a --calib no one gave.
    const flat = path.join(dir, 'flat-classes');
    mkdirSync(path.join(flat, 'cat'), { recursive: true });
    const notSplit = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--qat', '--data', flat]);
    expect(notSplit.code).toBe(1);
    expect(notSplit.stderr).toMatch(/flat-classes: has no train\/ subfolder: --qat trains on train\/ and scores on test\/ \(or val\/\)/);
    expect(notSplit.stderr).not.toMatch(/--calib/);
  }, 300_000);

  it('says when QAT ended below the PTQ model it started from, and on a saturating CPU scores the result on exact kernels too', async () => {
    // A trained model (35 % after 4 epochs on 2,048 images) and QAT at a learning rate that wrecks it
    // (a trial's --lr 50: PTQ 28.00 % → QAT 6.00 %, written without a word).
    const trained = path.join(dir, 'trained.onnx');
    const train = await runSlim(['train', '--model', model, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--train-limit', '2048', '--test-limit', '256', '--batch', '64', '--threads', '2', '--epochs', '4', '--out', trained]);
    expect(train.code, train.stderr).toBe(0);
    const wrecked = await runSlim(['quantize', trained, '-o', path.join(dir, 'wrecked.onnx'), '--qat', '--epochs', '1', '--lr', '1', '--no-distill', ...data, '--json']);
    expect(wrecked.code, wrecked.stderr).toBe(0);
    const r = JSON.parse(wrecked.stdout) as QuantizeJson & { top1_after_exact_kernels?: number };
    expect(r.top1_after).toBeLessThan(r.qat.top1_ptq - 0.05);
    expect(wrecked.stderr).toMatch(/warning: QAT ended below the PTQ model it started from \([\d.]+ % against [\d.]+ %: \d+ images fewer of [\d,]+\): slim quantize without --qat writes the better model; or train again with a lower --lr than 1, fewer --epochs or more training images/);
    // Its 8-bit weights on this CPU's int8 kernels: where those saturate, the exact top-1 is given beside.
    expect(r.top1_after_exact_kernels !== undefined).toBe(SATURATING_HOST);
    // Without a teacher the training loss is cross-entropy; distilled from the float model, it is named the KD loss.
    expect(wrecked.stderr).toMatch(/^epoch 1\/1: train loss \d/m);
    const taught = await runSlim(['quantize', trained, '-o', path.join(dir, 'taught.onnx'), '--qat', '--epochs', '1', ...data]);
    expect(taught.code, taught.stderr).toBe(0);
    expect(taught.stderr).toMatch(/^epoch 1\/1: train KD loss \d+\.\d{3}, train top-1 .*; test loss \d/m);
    expect(taught.stderr).toContain('note: train KD loss is the distillation loss');
  }, 300_000);

  it('a gap of a few images is a note that the test images cannot tell the two apart, not "the better model"', () => {
    expect(qatBelowPtqLine(0.665, 0.675, 200, undefined)).toBe('note: QAT ended a little below the PTQ model it started from (66.50 % against 67.50 %: 2 images fewer of 200), within what 200 test images can tell apart — score both on more (--eval-limit) before choosing');
    expect(qatBelowPtqLine(0.6, 0.7, 200, 0.5)).toMatch(/^warning: QAT ended below the PTQ model it started from \(60\.00 % against 70\.00 %: 20 images fewer of 200\): .*a lower --lr than 0\.5,/);
    // A recipe's QAT stage says the same in its keys.
    expect(qatBelowStartLine(0.6, 0.7, 200, 0.001, { without: 'the same stage without qat makes the better model', lr: 'qat.lr', epochs: 'qat.epochs', evalMore: 'qat.eval_limit' }))
      .toBe('warning: QAT ended below the PTQ model it started from (60.00 % against 70.00 %: 20 images fewer of 200): the same stage without qat makes the better model; or train again with a lower qat.lr than 0.001, fewer qat.epochs or more training images');
  });

  it('resumes only the run of the same calibration: another --method or --per-tensor starts from other scales', async () => {
    const ck = path.join(dir, 'qat-ck');
    const args = [model, '-o', path.join(dir, 'qat-ck.int8.onnx'), '--qat', '--epochs', '1', '--method', 'minmax', ...data, '--checkpoint-dir', ck, '--json'];
    await slimQuantize(args);
    // Without --resume the earlier run's checkpoint is not silently replaced.
    const again = await runSlim(['quantize', ...args]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--checkpoint-dir .*qat-ck holds the checkpoint of an earlier run .* — add --resume to continue that run/);
    const other = await runSlim(['quantize', ...args, '--per-tensor', '--resume']);
    expect(other.code).toBe(2);
    // Named by what changed: the calibration, not the weights that follow from it.
    expect(other.stderr).toMatch(/qat-ck\/last\.ckpt: the checkpoint was made by a run with other settings \(calibration: --per-tensor false then, true now\)/);
    // Refused before calibrating (minutes on a large calibration set), not after.
    expect(other.stderr).not.toMatch(/^calibrate:|^eval int8/m);
    // So are the training's own settings, by their flags: --lr, --no-distill, --epochs.
    const otherTraining = await runSlim(['quantize', ...args, '--lr', '0.5', '--no-distill', '--epochs', '2', '--resume']);
    expect(otherTraining.code).toBe(2);
    expect(otherTraining.stderr).toMatch(/qat-ck\/last\.ckpt: the checkpoint was made by a run with other settings \((?=.*--epochs: 1 then, 2 now)(?=.*--lr: 0\.001 then, 0\.5 now)(?=.*distillation from the float model \(--no-distill\): on then, off now)/);
    expect(otherTraining.stderr).not.toMatch(/^calibrate:|^eval int8/m);
    // Without --eval/--eval-limit the int8 model written is still scored by ONNX Runtime, on the test images training scored.
    const withoutEvalLimit = args.filter((a, i) => a !== '--eval-limit' && args[i - 1] !== '--eval-limit');
    const same = JSON.parse(await slimQuantize([...withoutEvalLimit, '--resume'])) as QuantizeJson & { eval_images: number };
    expect(same.qat.epochs).toBe(1);
    // Said as slim train and distill say it: the checkpoint held the finished epoch.
    expect(same.qat).toMatchObject({ resumed_from_epoch: 1 });
    expect(same.eval_images).toBe(256);
    expect(Math.abs(same.top1_after - same.qat.engine_top1)).toBeLessThanOrEqual(2 / 256);
  }, 300_000);

  it('explains what --qat needs and which flags belong to it', async () => {
    const noData = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--qat']);
    expect(noData.code).toBe(2);
    expect(noData.stderr).toMatch(/--qat needs training images/);
    const lsqAlone = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--lsq']);
    expect(lsqAlone.code).toBe(2);
    expect(lsqAlone.stderr).toMatch(/--lsq only applies with --qat/);
    // --data, as every other command takes images, meant as calibration images.
    const dataAlone = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--data', 'cifar10']);
    expect(dataAlone.code).toBe(2);
    expect(dataAlone.stderr).toMatch(/--data is the training data of --qat; calibration images are --calib — pass --calib cifar10 to calibrate on them/);
    const noDistillAlone = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--no-distill']);
    expect(noDistillAlone.code).toBe(2);
    expect(noDistillAlone.stderr).toMatch(/--no-distill only applies with --qat/);
    const epochsAlone = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--epochs', '3']);
    expect(epochsAlone.code).toBe(2);
    expect(epochsAlone.stderr).toMatch(/--epochs only applies with --qat — add --qat to fine-tune the int8 model, or drop --epochs/);
    // Training's name for its test images, given to score the int8 model: pointed to --eval-limit (a trial).
    const testLimitAlone = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--eval', 'cifar10', '--test-limit', '50']);
    expect(testLimitAlone.code).toBe(2);
    expect(testLimitAlone.stderr.trim()).toBe('slim: --test-limit only applies with --qat (the test images each epoch scores) — to score the int8 model on fewer test images, use --eval-limit N; or add --qat to fine-tune it');
    const dynamic = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--qat', '--mode', 'dynamic', '--data', 'cifar10']);
    expect(dynamic.code).toBe(2);
    expect(dynamic.stderr).toMatch(/--qat fine-tunes a static int8 model/);
    // Said before calibrating and scoring the PTQ model (a trial waited through both for it).
    const resumeAlone = await runSlim(['quantize', model, '-o', path.join(dir, 'x.onnx'), '--qat', '--resume', '--data', 'cifar10', '--data-dir', CIFAR_DIR]);
    expect(resumeAlone.code).toBe(2);
    expect(resumeAlone.stderr.trim()).toBe('slim: --resume needs --checkpoint-dir (or a checkpoint file) — pass --checkpoint-dir DIR, the folder the run to continue wrote its checkpoints to');
  }, 120_000);
});
