import './helpers/engine-env.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDistill } from '../src/cli/commands/distill.js';
import { trainModel } from '../src/engine/train.js';
import { distill } from '../src/compress/distill/index.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { nativeAvailable } from '../src/engine/native.js';
import { CIFAR10_CLASSES } from '../src/data/cifar10-files.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { readPreprocessing, withClassNames } from '../src/zoo/metadata.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { buildZooModel } from '../src/zoo/index.js';
import { runSlim } from './helpers/cli.js';
import { smallCnn } from './helpers/engine-nets.js';
import { CIFAR_DIR } from './helpers/fixtures.js';
import { runCommandInProcess } from './helpers/in-process.js';
import { modelSteps } from '../src/onnx/provenance.js';

const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));
const dir = mkdtempSync(path.join(tmpdir(), 'slim-distill-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const slimDistill = (args: string[]): Promise<string> => runCommandInProcess(registerDistill, 'distill', args);

interface DistillJson {
  teacher_top1: number;
  test_top1: number;
  onnxruntime_top1: number;
  alpha: number;
  temperature: number;
  cached_teacher: boolean;
  epochs: number;
  steps: number;
}

describe.skipIf(!nativeAvailable() || !hasCifar)('slim distill', () => {
  const teacher = path.join(dir, 'teacher.onnx');
  const student = path.join(dir, 'student.onnx');
  const common = ['--data', 'cifar10', '--data-dir', CIFAR_DIR, '--train-limit', '512', '--test-limit', '256', '--epochs', '1', '--batch', '64', '--lr', '0.05', '--threads', '2'];

  beforeAll(async () => {
    await writeModel(smallCnn({ seed: 1, widths: [8, 16, 16] }), teacher);
    await writeModel(smallCnn({ seed: 2, widths: [4, 8, 8] }), student);
  });

  it('distills into an ONNX student, writes a BN-folded model that ONNX Runtime scores like the engine', async () => {
    const out = path.join(dir, 'kd.onnx');
    const r = JSON.parse(await slimDistill(['--teacher', teacher, '--student', student, ...common, '--alpha', '0.3', '--temperature', '2', '--out', out, '--json'])) as DistillJson;
    // The teacher's top-1 says on how many test images it was taken (a trial read 68.80 % of 500 as the whole set's).
    expect(r).toMatchObject({ alpha: 0.3, temperature: 2, cached_teacher: false, epochs: 1, steps: 8, eval_images: 256 });
    expect(r.teacher_top1).toBeGreaterThanOrEqual(0);
    expect(Math.abs(r.onnxruntime_top1 - r.test_top1)).toBeLessThanOrEqual(1 / 256);
    const written = await readModel(out);
    expect(written.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    expect(JSON.parse(written.metadata['slimkit.distillation']!)).toMatchObject({ teacher: 'teacher.onnx', temperature: 2, alpha: 0.3, cached_teacher: false, eval_images: 256 });
    // The training record's top-1 is the distilled student's: it is written last.
    expect(modelSteps(written.metadata).map((s) => s.key).slice(-2)).toEqual(['slimkit.distillation', 'slimkit.training']);
  }, 180_000);

  it('--cache-teacher trains on the unaugmented images from one teacher pass, as the live teacher would', async () => {
    const r = JSON.parse(await slimDistill(['--teacher', teacher, '--student', student, ...common, '--cache-teacher', '--out', path.join(dir, 'cached.onnx'), '--json', '--no-verify'])) as DistillJson;
    expect(r.cached_teacher).toBe(true);
    // Without augmentation the live teacher sees the same images the cache holds: the same run.
    const [train, test] = await Promise.all([loadCifar10('train', { dataDir: CIFAR_DIR, limit: 512 }), loadCifar10('test', { dataDir: CIFAR_DIR, limit: 256 })]);
    const options = { teacher: await readModel(teacher), data: { train, test }, epochs: 1, batch: 64, lr: 0.05, threads: 2, augment: false as const };
    const live = await distill({ ...options, student: await readModel(student) });
    const cached = await distill({ ...options, student: await readModel(student), cacheTeacher: true });
    live.history.forEach((e, k) => expect(Math.abs(e.trainLoss - cached.history[k]!.trainLoss)).toBeLessThan(1e-4));
    // Neither model names its statistics: the student trains with the default (CIFAR-10's) and is not
    // written as if it were known (test/normalization-flags.test.ts: --mean/--std are recorded).
    expect(live.graph.metadata['slimkit.std']).toBeUndefined();
    expect(cached.testAccuracy).toBeCloseTo(r.test_top1, 6);
    // A cache holds the unaugmented images' logits: asking for augmentation too is refused.
    await expect(distill({ ...options, student: await readModel(student), cacheTeacher: true, augment: { crop: 4, flip: true } })).rejects.toThrow(/cannot be combined with augmentation/);
    // At alpha 1 the teacher weighs nothing: left out of training (it ran every step, or was cached, for a
    // zero loss term), and the run is plain training's, weight for weight.
    const labelsOnly = await distill({ ...options, student: await readModel(student), alpha: 1, cacheTeacher: true });
    expect(labelsOnly.cachedTeacher).toBe(false);
    const { teacher: _teacher, ...labelsAlone } = options;
    const plain = await trainModel({ ...labelsAlone, graph: await readModel(student) });
    for (const [name, t] of plain.graph.initializers) expect(Array.from(labelsOnly.graph.initializers.get(name)!.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
  }, 180_000);

  it('puts a student file recording the teacher\'s classes in another order into the teacher\'s, and says so', async () => {
    const names = CIFAR10_CLASSES;
    const named = path.join(dir, 'named-teacher.onnx');
    const reversed = path.join(dir, 'reversed-student.onnx');
    await writeModel(withClassNames(smallCnn({ seed: 1, widths: [8, 16, 16] }), names), named);
    await writeModel(withClassNames(smallCnn({ seed: 2, widths: [4, 8, 8] }), [...names].reverse()), reversed);
    const out = path.join(dir, 'ordered.onnx');
    const r = await runSlim(['distill', '--teacher', named, '--student', reversed, ...common, '--out', out, '--no-verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("note: reversed-student.onnx records named-teacher.onnx's classes in another order: its classifier's outputs are put in the teacher's order");
    expect(readPreprocessing(await readModel(out)).classNames).toEqual(names);

    // A teacher recording no names scores the data's classes by position, whatever order the student records.
    const plain = JSON.parse(await slimDistill(['--teacher', teacher, '--student', student, ...common, '--out', path.join(dir, 'p1.onnx'), '--json', '--no-verify'])) as DistillJson;
    const withReversed = await runSlim(['distill', '--teacher', teacher, '--student', reversed, ...common, '--out', path.join(dir, 'p2.onnx'), '--json', '--no-verify']);
    expect(withReversed.code, withReversed.stderr).toBe(0);
    expect(withReversed.stderr).toContain("note: reversed-student.onnx records the classes of cifar10 in another order: its classifier's outputs are put in the data's order, which teacher.onnx, recording no class names, scores by position");
    expect((JSON.parse(withReversed.stdout) as DistillJson).teacher_top1).toBe(plain.teacher_top1);
    expect(readPreprocessing(await readModel(path.join(dir, 'p2.onnx'))).classNames).toEqual(names);
  }, 180_000);

  it('scores a trained student first and warns of a teacher below it; --alpha 1 records training alone', async () => {
    // A student trained a little (2 epochs on 2,048 images), a teacher that never was.
    const [train, test] = await Promise.all([loadCifar10('train', { dataDir: CIFAR_DIR, limit: 2048 }), loadCifar10('test', { dataDir: CIFAR_DIR, limit: 256 })]);
    const trained = await trainModel({ graph: smallCnn({ seed: 2, widths: [4, 8, 8] }), data: { train, test }, epochs: 2, batch: 64, lr: 0.05, threads: 2 });
    const ahead = path.join(dir, 'trained-student.onnx');
    await writeModel(foldBatchNorm(trained.graph), ahead);
    const r = await runSlim(['distill', '--teacher', teacher, '--student', ahead, ...common, '--out', path.join(dir, 'pulled.onnx'), '--json', '--no-verify']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as DistillJson & { start_top1: number };
    // What it started from is the trained model's own top-1 (the engine scored it; BN re-inserted changes nothing).
    expect(json.start_top1).toBeCloseTo(trained.testAccuracy, 6);
    expect(json.start_top1).toBeGreaterThan(Math.max(json.teacher_top1, 0.15));
    expect(r.stderr).toContain(`warning: the teacher scores ${(100 * json.teacher_top1).toFixed(2)} % on cifar10/test, below the student's ${(100 * json.start_top1).toFixed(2)} % before distillation`);
    // Near chance (10 classes: under 15 %), said before the first epoch as well, not after training.
    const nearChance = r.stderr.indexOf(`warning: the teacher scores ${(100 * json.teacher_top1).toFixed(2)} % on cifar10/test, near chance`);
    expect(nearChance >= 0).toBe(json.teacher_top1 < 0.15);
    if (nearChance >= 0) expect(nearChance).toBeLessThan(r.stderr.indexOf('epoch 1/1:'));
    // The epoch line names the distillation loss (beside the test cross-entropy it read as a bug), and says once what it is.
    expect(r.stderr).toMatch(/^epoch 1\/1: train KD loss \d+\.\d{3}, train top-1 .*; test loss \d+\.\d{3}/m);
    expect(r.stderr.split('note: train KD loss is the distillation loss α·CE(labels) + (1−α)·T²·KL(teacher ‖ student)').length).toBe(2);
    // A teacher above the student: no warning.
    const reversedRoles = await runSlim(['distill', '--teacher', ahead, '--student', student, ...common, '--out', path.join(dir, 'taught.onnx'), '--no-verify']);
    expect(reversedRoles.code, reversedRoles.stderr).toBe(0);
    expect(reversedRoles.stderr).not.toContain('below the student');

    const labelsOnly = await runSlim(['distill', '--teacher', teacher, '--student', ahead, ...common, '--alpha', '1', '--out', path.join(dir, 'labels.onnx'), '--no-verify']);
    expect(labelsOnly.code, labelsOnly.stderr).toBe(0);
    expect(labelsOnly.stdout).toMatch(/^trained .*trained-student\.onnx on the labels alone \(--alpha 1; teacher .*teacher\.onnx scored \d+\.\d+ % on 256 images\) for 1 epoch/);
    expect(labelsOnly.stderr).not.toContain('below the student');
    expect(labelsOnly.stderr).toMatch(/^epoch 1\/1: train loss /m);
    expect(labelsOnly.stderr).not.toContain('KD loss');
    expect(modelSteps((await readModel(path.join(dir, 'labels.onnx'))).metadata).map((s) => s.key)).not.toContain('slimkit.distillation');
  }, 240_000);

  it('--resume of a run with other settings is refused before the data is read; the same settings resume it', async () => {
    const ck = path.join(dir, 'kd-ck');
    const args = ['--teacher', teacher, '--student', 'resnet18-cifar', '--width', '0.125', ...common, '--checkpoint-dir', ck, '--no-verify'];
    const first = await runSlim(['distill', ...args, '--out', path.join(dir, 'kd-first.onnx')]);
    expect(first.code, first.stderr).toBe(0);
    // A data folder that does not exist: the refusal names the checkpoint, so it came before the data.
    const gone = path.join(dir, 'no-such-data');
    const changed = await runSlim(['distill', ...args, '--temperature', '3', '--resume', '--data-dir', gone, '--out', path.join(dir, 'kd-again.onnx')]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/kd-ck\/last\.ckpt: the checkpoint was made by a run with other settings \(--temperature 4 then, 3 now\) — resume with the same options as then/);
    expect(changed.stderr).not.toContain('no-such-data');
    const trained = await runSlim(['distill', ...args, '--resume', '--out', path.join(dir, 'kd-again.onnx')]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout + trained.stderr).toMatch(/the checkpoint had finished all 1 epochs: nothing was trained/);
  }, 180_000);

  it('refuses a teacher for other classes and bad flags, in one line each (a pair that does not fit is usage: exit 2, as in every command)', async () => {
    const seven = path.join(dir, 'seven.onnx');
    await writeModel(smallCnn({ seed: 3, widths: [4, 8, 8], classes: 7 }), seven);
    const wrong = await runSlim(['distill', '--teacher', seven, '--student', student, ...common, '--out', path.join(dir, 'x.onnx')]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/teacher predicts 7 classes but the data set has 10/);
    expect(wrong.stderr.trim().split('\n').filter((l) => !l.startsWith('distill')).length).toBe(1);

    // A student for other classes is refused before anything is measured on the data (BN re-insertion).
    const sevenStudent = path.join(dir, 'seven-student.onnx');
    await writeModel(foldBatchNorm(smallCnn({ seed: 3, widths: [4, 8, 8], classes: 7 })), sevenStudent);
    const wrongStudent = await runSlim(['distill', '--teacher', teacher, '--student', sevenStudent, ...common, '--out', path.join(dir, 'x.onnx')]);
    expect(wrongStudent.code).toBe(2);
    expect(wrongStudent.stderr).toMatch(/seven-student\.onnx: the student predicts 7 classes but the data set has 10 — export the student for the data set's 10 classes, or give a zoo name/);
    expect(wrongStudent.stderr).not.toMatch(/re-inserted/);
    // Teacher and student see one batch: another image size is named as such, before the data is read.
    const small = path.join(dir, 'student-16.onnx');
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.125, seed: 1, imageSize: [16, 16] }), small);
    const otherSize = await runSlim(['distill', '--teacher', teacher, '--student', small, ...common, '--out', path.join(dir, 'x.onnx')]);
    expect(otherSize.code).toBe(2);
    expect(otherSize.stderr).toMatch(/the teacher takes 3×32×32 images but the student \(.*student-16\.onnx\) takes 3×16×16 — both see one batch/);

    const alpha = await runSlim(['distill', '--teacher', teacher, '--student', student, '--data', 'cifar10', '--alpha', '1.5', '--out', path.join(dir, 'x.onnx')]);
    expect(alpha.code).toBe(2);
    expect(alpha.stderr).toMatch(/--alpha must be in \[0, 1\]/);
    const hot = await runSlim(['distill', '--teacher', teacher, '--student', student, ...common, '--temperature', '1e9', '--out', path.join(dir, 'x.onnx')]);
    expect(hot.code).toBe(2);
    expect(hot.stderr).toMatch(/--temperature must be in \(0, 100\], got 1000000000 — beyond that float32's softmax\(z\/T\) is uniform/);

    const notZoo = await runSlim(['distill', '--teacher', teacher, '--student', 'resnet9000', '--data', 'cifar10', '--out', path.join(dir, 'x.onnx')]);
    expect(notZoo.code).toBe(2);
    expect(notZoo.stderr).toMatch(/neither a zoo model nor a model file/);
  }, 180_000);
});
