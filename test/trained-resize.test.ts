/**
 * The resize a model was trained with (slimkit.resize): slim train, distill and prune --finetune take
 * --resize for an image folder and record how its images were brought to the model (the default, shorter
 * side + centre crop, too), so a later quantize, eval or deploy reads them the same way, and one given
 * another --resize says so. A trial trained on centre crops, then quantized with --resize stretch without
 * a word (trial 27 F4).
 */
import './helpers/engine-env.js';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { replacedResizeNote } from '../src/data/model-resize.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-trained-resize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** train/ and test/ of two classes of 16×8 images (wider than the model's 8×8 input: the resize matters). */
const folder = path.join(dir, 'wide');
const teacher = path.join(dir, 'teacher.onnx');
const common = ['--width', '0.0625', '--image-size', '8,8', '--data', folder, '--epochs', '1', '--batch', '4', '--threads', '1', '--no-verify'];
const resizeOf = async (file: string): Promise<string | undefined> => (await readModel(file)).metadata['slimkit.resize'];

beforeAll(async () => {
  for (const split of ['train', 'test']) {
    for (const [k, name] of ['left', 'right'].entries()) {
      mkdirSync(path.join(folder, split, name), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const rgb = Buffer.alloc(16 * 8 * 3);
        for (let p = 0; p < 16 * 8; p++) rgb[p * 3 + k] = 40 * i + ((p % 16) < 8 ? 100 : 0);
        await sharp(rgb, { raw: { width: 16, height: 8, channels: 3 } }).png().toFile(path.join(folder, split, name, `${i}.png`));
      }
    }
  }
  await writeModel(buildZooModel('resnet18-cifar', { width: 0.0625, classes: 2, seed: 1, imageSize: [8, 8] }), teacher);
}, 60_000);

describe.skipIf(!nativeAvailable())('the resize a model trained with', () => {
  it('slim train records --resize, and the default it read a folder with; quantize says when another --resize replaces it', async () => {
    const stretched = path.join(dir, 'stretched.onnx');
    const r = await runSlim(['train', '--model', 'resnet18-cifar', ...common, '--resize', 'stretch', '--out', stretched], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(await resizeOf(stretched)).toBe('"stretch"');
    const cropped = path.join(dir, 'cropped.onnx');
    const plain = await runSlim(['train', '--model', 'resnet18-cifar', ...common, '--out', cropped], { timeoutMs: 180_000 });
    expect(plain.code, plain.stderr).toBe(0);
    expect(await resizeOf(cropped)).toBe('"shorter-side"');
    // Fine-tuned further, the model's record is what its folder is read with, and what it keeps.
    const further = path.join(dir, 'further.onnx');
    const again = await runSlim(['train', '--model', stretched, ...common.slice(4), '--lr', '0.001', '--out', further], { timeoutMs: 180_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(await resizeOf(further)).toBe('"stretch"');
    // Quantized with another resize than it learned from: said, not silent.
    const q = await runSlim(['quantize', cropped, '-o', path.join(dir, 'q.onnx'), '--calib', folder, '--resize', 'stretch', '--samples', '8', '--threads', '1']);
    expect(q.code, q.stderr).toBe(0);
    expect(q.stderr).toContain(`note: --resize stretch replaces the resize shorter-side that ${cropped} records (slimkit.resize)`);
  }, 400_000);

  it('slim distill and prune --finetune record it too; --resize is refused where no folder is read', async () => {
    const student = path.join(dir, 'student.onnx');
    const d = await runSlim(['distill', '--teacher', teacher, '--student', 'resnet18-cifar', ...common, '--resize', '12', '--out', student], { timeoutMs: 180_000 });
    expect(d.code, d.stderr).toBe(0);
    expect(await resizeOf(student)).toBe('12');
    const pruned = path.join(dir, 'pruned.onnx');
    const p = await runSlim(['prune', teacher, '-o', pruned, '--structured', '--ratio', '0.25', '--round-to', '1', '--finetune', '1', '--batch', '4', '--threads', '1', '--data', folder, '--resize', 'stretch'], { timeoutMs: 180_000 });
    expect(p.code, p.stderr).toBe(0);
    expect(await resizeOf(pruned)).toBe('"stretch"');

    // A student of free height and width that records no size is trained at the teacher's (both see one
    // batch): a trial's was refused, asked for an --image-size the teacher already had.
    const free = buildZooModel('resnet18-cifar', { width: 0.0625, classes: 2, seed: 3 });
    free.inputs[0] = { ...free.inputs[0]!, shape: ['batch', 3, 'h', 'w'] };
    delete free.metadata['slimkit.input_size'];
    const freeFile = path.join(dir, 'free-student.onnx');
    await writeModel(free, freeFile);
    const fromFree = path.join(dir, 'from-free.onnx');
    const f = await runSlim(['distill', '--teacher', teacher, '--student', freeFile, ...common.slice(4), '--out', fromFree], { timeoutMs: 180_000 });
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toContain("height and width are free and it records no size: it is trained at the teacher's 8×8 (both see one batch)");
    expect(JSON.parse((await readModel(fromFree)).metadata['slimkit.input_size']!)).toEqual([3, 8, 8]);

    // CIFAR-10 is not resized; prune without --data reads no images.
    const onCifar = await runSlim(['train', '--model', 'resnet18-cifar', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--resize', 'stretch', '--out', path.join(dir, 'never.onnx')]);
    expect(onCifar.code).toBe(2);
    expect(onCifar.stderr).toMatch(/--resize applies to image folders: CIFAR-10's images are fed at 32×32 as they are — drop --resize, or pass --data <image folder>/);
    const noData = await runSlim(['prune', teacher, '-o', path.join(dir, 'never.onnx'), '--structured', '--ratio', '0.25', '--resize', 'stretch']);
    expect(noData.code).toBe(2);
    expect(noData.stderr).toMatch(/--resize says how the images of --data are brought to the model, and no --data is given/);
    // Not "Did you mean --resume?": the flag exists.
    expect(onCifar.stderr).not.toMatch(/unknown option/);
  }, 400_000);
});

describe('replacedResizeNote', () => {
  it('names who asked (a flag, a recipe key), the two resizes and the file; nothing when they agree or one is missing', () => {
    const recorded = { file: 'm.onnx', mode: 'shorter-side' as const };
    expect(replacedResizeNote('data.resize', 'stretch', recorded)).toBe('note: data.resize stretch replaces the resize shorter-side that m.onnx records (slimkit.resize)');
    expect(replacedResizeNote('--resize', 'shorter-side', recorded)).toBeUndefined();
    expect(replacedResizeNote('--resize', undefined, recorded)).toBeUndefined();
    expect(replacedResizeNote('--resize', 'stretch', undefined)).toBeUndefined();
  });
});
