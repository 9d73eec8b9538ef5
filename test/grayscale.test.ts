/**
 * Models that take grayscale images (one channel: MNIST-style, X-ray, machine-vision cameras): image
 * folders are read as PIL's convert('L') reads them, and every command — eval, bench, quantize, prune,
 * train, deploy and its classifier — feeds them one plane with one mean and std.
 */
import './helpers/engine-env.js';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportNotes } from '../src/cli/commands/info.js';
import { normalizationFor } from '../src/data/model-data.js';
import { loadImageFolder } from '../src/data/image-folder.js';
import { normalizeInto, toGrayscale } from '../src/data/transforms.js';
import { parseBundleConfig } from '../src/deploy/config.js';
import { nativeAvailable } from '../src/engine/native.js';
import { dataInputs } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { openClassifier } from '../src/serve/classifier.js';
import { Random } from '../src/util/random.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, maxAbsDiff, torchSidecar } from './helpers/fixtures.js';

// torch.onnx export of TinyResNet(in_channels=1) at 28×28 (scripts/make-torch-fixtures.py), BN folded.
const GRAY = fixturePath('torch-tiny-resnet-gray.onnx');
const hasPil = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import PIL'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const dir = mkdtempSync(path.join(tmpdir(), 'slim-gray-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * train/ and test/ of 10 classes whose images differ in brightness and texture: class k is a pattern
 * around gray level 20 + 23k with noise, stored as RGB PNGs tinted per image (the loader must take luma).
 */
async function writeFolder(root: string, perClass: { train: number; test: number }): Promise<void> {
  const rng = new Random(7);
  for (const [split, count] of [['train', perClass.train], ['test', perClass.test]] as const) {
    for (let k = 0; k < 10; k++) {
      mkdirSync(path.join(root, split, `c${k}`), { recursive: true });
      for (let i = 0; i < count; i++) {
        const rgb = Buffer.alloc(28 * 28 * 3);
        for (let p = 0; p < 28 * 28; p++) {
          const stripe = (Math.floor(p / 28) + (p % 28)) % (k + 2) === 0 ? 40 : 0;
          const v = 20 + 23 * k + stripe + Math.floor(rng.next() * 30) - 15;
          for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.max(0, Math.min(255, v + (c - 1) * ((i % 3) - 1) * 6));
        }
        await sharp(rgb, { raw: { width: 28, height: 28, channels: 3 } }).png().toFile(path.join(root, split, `c${k}`, `${i}.png`));
      }
    }
  }
}

const folder = path.join(dir, 'images');
beforeAll(async () => writeFolder(folder, { train: 12, test: 6 }), 60_000);

describe('grayscale images', () => {
  it.skipIf(!hasPil)("image folders read for a 1-channel model equal PIL's convert('L') (torchvision's Grayscale)", async () => {
    const rng = new Random(3);
    const rgb = Buffer.from(Array.from({ length: 20 * 12 * 3 }, () => Math.floor(rng.next() * 256)));
    const classDir = path.join(dir, 'pil', 'a');
    mkdirSync(classDir, { recursive: true });
    const file = path.join(classDir, 'x.png');
    await sharp(rgb, { raw: { width: 20, height: 12, channels: 3 } }).png().toFile(file);
    const set = await loadImageFolder(path.join(dir, 'pil'), { size: [12, 20], resize: 'stretch', channels: 1 });
    expect(set.imageShape).toEqual([1, 12, 20]);
    const pil = execFileSync('/usr/bin/python3', ['-c', `from PIL import Image; import sys; sys.stdout.write(','.join(map(str, Image.open(${JSON.stringify(file)}).convert('L').getdata())))`], { encoding: 'utf8' });
    expect(Array.from(set.pixels)).toEqual(pil.split(',').map(Number));
    // A gray pixel keeps its value.
    expect(Array.from(toGrayscale(Uint8Array.of(0, 77, 255, 0, 77, 255, 0, 77, 255), 3))).toEqual([0, 77, 255]);
  });

  it('slim eval feeds one normalized plane: its top-1 equals ONNX Runtime on the same images normalized by hand (and PyTorch on its own input)', async () => {
    const torch = torchSidecar('torch-tiny-resnet-gray.onnx');
    const graph = await readModel(GRAY);
    expect(exportNotes(graph)).toEqual([expect.stringMatching(/^takes grayscale \(1-channel\) images: image folders are read as luma .* mean 0\.5 \/ std 0\.5 unless --mean\/--std say otherwise/)]);
    // Never failing over metadata: a malformed entry leaves the normalization out of the note.
    expect(exportNotes({ ...graph, metadata: { 'slimkit.mean': 'oops' } })).toEqual([expect.stringMatching(/read as luma \(PIL's convert\('L'\)\); CIFAR-10/)]);
    // One recorded mean serves every channel of an RGB model (torchvision's Normalize broadcasts it).
    const rgb = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    expect(normalizationFor({ ...rgb, metadata: { 'slimkit.mean': '[0.5]', 'slimkit.std': '[0.25]' } }, {})).toEqual({ scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect(maxAbsDiff((await runGraph(graph, { input: torch.input }))['logits']!, torch.output)).toBeLessThan(1e-5);
    const run = await runSlim(['eval', GRAY, '--data', folder, '--mean', '0.3', '--std', '0.2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { top1: number; eval_images: number };
    expect(result.eval_images).toBe(60);
    // The oracle: the same PNGs, luma by toGrayscale, normalized with mean 0.3 / std 0.2, one ORT run.
    const set = await loadImageFolder(path.join(folder, 'test'), { size: [28, 28], channels: 3 });
    const plane = 28 * 28;
    const x = new Float32Array(set.labels.length * plane);
    for (let i = 0; i < set.labels.length; i++) {
      normalizeInto(x, i * plane, toGrayscale(set.pixels.subarray(i * 3 * plane, (i + 1) * 3 * plane), plane), 0, [1, 28, 28], { scale: 1 / 255, mean: [0.3], std: [0.2] });
    }
    const logits = (await runGraph(graph, { input: float32([set.labels.length, 1, 28, 28], x) }))['logits']! as Tensor<'float32'>;
    let correct = 0;
    for (let i = 0; i < set.labels.length; i++) {
      const row = Array.from(logits.data.subarray(i * 10, (i + 1) * 10));
      if (row.indexOf(Math.max(...row)) === set.labels[i]) correct++;
    }
    expect(result.top1).toBe(correct / set.labels.length);
    // Three means for a one-channel model are a mistake to point out, not to guess around.
    const wrong = await runSlim(['eval', GRAY, '--data', folder, '--mean', '0.5,0.5,0.5']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--mean has 3 numbers but the model takes grayscale \(1-channel\) images — pass one number/);
    // CIFAR-10 is RGB: said up front, with what to use instead.
    const cifar = await runSlim(['eval', GRAY, '--data', 'cifar10']);
    expect(cifar.code).toBe(2);
    // Named: in `slim bench *.onnx` the file is how one finds the model meant.
    expect(cifar.stderr).toMatch(/gray[^ ]*\.onnx: the model takes grayscale \(1-channel\) images but CIFAR-10's are RGB — use an image folder/);
  }, 60_000);

  it.skipIf(!nativeAvailable())('slim train, quantize, prune and deploy take it; ORT scores the trained model as the engine did; the bundle classifies one plane', async () => {
    const trained = path.join(dir, 'trained.onnx');
    const train = await runSlim(['train', '--model', GRAY, '--data', folder, '--epochs', '10', '--batch', '20', '--lr', '0.05', '--threads', '2', '--out', trained, '--json'], { timeoutMs: 180_000 });
    expect(train.code, train.stderr).toBe(0);
    const t = JSON.parse(train.stdout) as { test_top1: number; onnxruntime_top1: number };
    expect(t.test_top1).toBeGreaterThan(0.3);
    expect(t.onnxruntime_top1).toBe(t.test_top1);
    expect(dataInputs(await readModel(trained))[0]!.shape).toEqual(['batch', 1, 28, 28]);

    const int8 = path.join(dir, 'int8.onnx');
    const quantized = await runSlim(['quantize', trained, '-o', int8, '--calib', folder, '--eval', folder, '--samples', '60', '--json']);
    expect(quantized.code, quantized.stderr).toBe(0);
    const q = JSON.parse(quantized.stdout) as { top1_before: number; top1_after: number; ort_ops: Record<string, number> };
    expect(q.top1_before).toBe(t.test_top1);
    expect(q.ort_ops['QLinearConv']).toBeGreaterThan(0);

    const pruned = path.join(dir, 'pruned.onnx');
    const prune = await runSlim(['prune', trained, '-o', pruned, '--structured', '--target-macs', '0.5', '--round-to', '1', '--data', folder, '--calib-samples', '60', '--json']);
    expect(prune.code, prune.stderr).toBe(0);

    const bundle = path.join(dir, 'bundle');
    const deployed = await runSlim(['deploy', int8, '--target', 'linux-x64', '--out', bundle]);
    expect(deployed.code, deployed.stderr).toBe(0);
    const config = parseBundleConfig(readFileSync(path.join(bundle, 'slim.json'), 'utf8'), 'slim.json');
    expect(config.preprocess).toMatchObject({ channels: 'grayscale', mean: [expect.closeTo(0.5, 6)], std: [expect.closeTo(0.5, 6)], size: [28, 28] });
    expect(readFileSync(path.join(bundle, 'README.md'), 'utf8')).toContain('28×28 grayscale');
    // The bundle's classifier on the test PNGs: the int8 model's top-1 as slim quantize measured it.
    const classifier = await openClassifier({ config, model: path.join(bundle, 'model.onnx'), threads: 1 });
    try {
      let correct = 0;
      let total = 0;
      for (let k = 0; k < 10; k++) {
        for (let i = 0; i < 6; i++) {
          const prepared = await classifier.prepare(readFileSync(path.join(folder, 'test', `c${k}`, `${i}.png`)));
          expect(prepared.data.length).toBe(28 * 28);
          const [scores] = await classifier.run([prepared]);
          if (scores!.indexOf(Math.max(...scores!)) === k) correct++;
          total++;
        }
      }
      expect(correct / total).toBe(q.top1_after);
    } finally {
      await classifier.close();
    }
  }, 300_000);
});

describe.skipIf(!nativeAvailable())('zoo models for grayscale images (--channels 1)', () => {
  it('slim zoo, slim train and a recipe build a 1-channel ResNet and train it on a grayscale folder; CIFAR-10 is refused', async () => {
    const zoo = path.join(dir, 'zoo-gray.onnx');
    const built = await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '--channels', '1', '-o', zoo]);
    expect(built.code, built.stderr).toBe(0);
    const graph = await readModel(zoo);
    expect(dataInputs(graph)[0]!.shape).toEqual(['batch', 1, 32, 32]);
    expect(JSON.parse(graph.metadata['slimkit.mean']!)).toEqual([0.5]);

    const trained = path.join(dir, 'zoo-trained.onnx');
    const train = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--channels', '1', '--data', folder, '--epochs', '2', '--batch', '20', '--threads', '2', '--out', trained, '--json'], { timeoutMs: 180_000 });
    expect(train.code, train.stderr).toBe(0);
    const t = JSON.parse(train.stdout) as { test_top1: number; onnxruntime_top1: number };
    expect(t.onnxruntime_top1).toBe(t.test_top1);
    expect(dataInputs(await readModel(trained))[0]!.shape).toEqual(['batch', 1, 32, 32]);

    const cifar = await runSlim(['train', '--model', 'resnet18-cifar', '--channels', '1', '--data', 'cifar10', '--out', path.join(dir, 'x.onnx')]);
    expect(cifar.code).toBe(2);
    expect(cifar.stderr).toMatch(/--channels 1 builds a grayscale model but CIFAR-10's images are RGB/);
    // --channels builds zoo models only, and a zoo student must take what its teacher takes.
    const onnx = await runSlim(['train', '--model', GRAY, '--channels', '3', '--data', folder, '--out', path.join(dir, 'x.onnx')]);
    expect(onnx.stderr).toMatch(/--channels builds zoo models; .*torch-tiny-resnet-gray\.onnx takes 1-channel images as it was exported — drop --channels/);
    const mismatch = await runSlim(['distill', '--teacher', GRAY, '--student', 'resnet18-cifar', '--channels', '3', '--data', folder, '--out', path.join(dir, 'x.onnx')]);
    expect(mismatch.stderr).toMatch(/--channels 3 asks for a student of 3-channel images, but the teacher takes 1-channel ones/);
    // A model file scoring 10 classes is not trained on 2.
    const two = path.join(dir, 'two');
    for (const split of ['train', 'test']) for (const c of ['c0', 'c1']) cpSync(path.join(folder, split, c), path.join(two, split, c), { recursive: true });
    const classes = await runSlim(['train', '--model', GRAY, '--data', two, '--out', path.join(dir, 'x.onnx')]);
    expect(classes.code).toBe(2);
    expect(classes.stderr).toMatch(/torch-tiny-resnet-gray\.onnx scores 10 classes but --data has 2/);

    const recipe = path.join(dir, 'gray.yaml');
    writeFileSync(recipe, [`name: gray`, `data: { dataset: ${folder} }`, 'model: { zoo: resnet18-cifar, width: 0.125, channels: 1 }', 'stages:', '  - train: { id: fp32, epochs: 1, batch: 20 }', '  - quantize: { id: int8, samples: 20 }',
      // A zoo student takes the teacher's channels.
      '  - distill: { id: kd, teacher: fp32, student: { zoo: resnet18-cifar, width: 0.125 }, epochs: 1, batch: 20 }', ''].join('\n'));
    const run = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'run'), '--threads', '2', '--no-report', '--json'], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    for (const id of ['fp32', 'int8', 'kd']) expect(dataInputs(await readModel(path.join(dir, 'run', 'models', `${id}.onnx`)))[0]!.shape!.slice(1)).toEqual([1, 32, 32]);
  }, 300_000);
});

it('a grayscale fixture exists beside its sidecar', () => {
  expect(existsSync(GRAY.replace('.onnx', '.json'))).toBe(true);
});
