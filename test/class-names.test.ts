/**
 * Class names (slimkit.classes): the commands that train on labelled data write the data's class names
 * into the model they write, the ones that compress keep the names of their input, and deploy labels by
 * them. Every command that scores a model on labelled data matches the data's classes to the model's
 * outputs by those names (data/model-data.ts labelledForModel): in the model's order when it records the
 * same names in another order, refused when the names differ. A model that records none is scored by
 * position, as before.
 */
import './helpers/engine-env.js';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchClasses } from '../src/data/class-names.js';
import { labelledForModel } from '../src/data/model-data.js';
import { loadRunData } from '../src/pipeline/data.js';
import { pixelStatistics, type ImageSet } from '../src/data/types.js';
import { loadImageFolder } from '../src/data/image-folder.js';
import { parseBundleConfig } from '../src/deploy/config.js';
import { nativeAvailable } from '../src/engine/native.js';
import type { Graph } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';
import { METADATA_KEYS, readPreprocessing } from '../src/zoo/metadata.js';
import { runSlim } from './helpers/cli.js';
import { realCifar10Dir } from './data-fixtures.js';

const NAMES = ['cat', 'dog', 'frog'];
const dir = mkdtempSync(path.join(tmpdir(), 'slim-class-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ImageNet layout: train/ and val/ (no test/) of one folder per class; class k is a noisy colour of its own. */
const folder = path.join(dir, 'photos');
/** A model that records no class names (a random zoo ResNet for the 3 classes). */
const unnamed = path.join(dir, 'unnamed.onnx');
/** The same function with its outputs in another order, recording their names: dog, frog, cat. */
const permuted = path.join(dir, 'permuted.onnx');
const ORDER = [1, 2, 0];

async function writeSplit(root: string, count: number, seed: number): Promise<void> {
  const rng = new Random(seed);
  for (const [k, name] of NAMES.entries()) {
    mkdirSync(path.join(root, name), { recursive: true });
    for (let i = 0; i < count; i++) {
      const rgb = Buffer.alloc(32 * 32 * 3);
      for (let p = 0; p < 32 * 32; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.max(0, Math.min(255, (c === k ? 200 : 40) + Math.floor(rng.next() * 80) - 40));
      await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(root, name, `${i}.png`));
    }
  }
}

/** `graph` with output j computing what output order[j] computed, named after it. */
function permuteOutputs(graph: Graph, order: number[], names: string[]): Graph {
  const fc = graph.nodes.find((n) => n.opType === 'Gemm')!;
  const initializers = new Map(graph.initializers);
  for (const name of [fc.inputs[1]!, fc.inputs[2]!]) {
    const t = graph.initializers.get(name) as Tensor<'float32'>;
    const row = t.data.length / order.length;
    const data = new Float32Array(t.data.length);
    order.forEach((from, j) => data.set(t.data.subarray(from * row, (from + 1) * row), j * row));
    initializers.set(name, { ...t, data });
  }
  return { ...graph, initializers, metadata: { ...graph.metadata, [METADATA_KEYS.classes]: JSON.stringify(order.map((k) => names[k])) } };
}

const classesOf = async (file: string): Promise<string[] | undefined> => readPreprocessing(await readModel(file)).classNames;

beforeAll(async () => {
  await writeSplit(path.join(folder, 'train'), 6, 1);
  await writeSplit(path.join(folder, 'val'), 5, 2);
  const graph = buildZooModel('resnet18-cifar', { width: 0.125, classes: 3, seed: 3 });
  await writeModel(graph, unnamed);
  await writeModel(permuteOutputs(graph, ORDER, NAMES), permuted);
}, 60_000);

describe('matchClasses', () => {
  const set = (classes: string[], labels: number[]): ImageSet => ({ name: 'x', classes, imageShape: [1, 1, 1], pixels: new Uint8Array(labels.length), labels: Uint16Array.from(labels) });

  it('keeps a set of the same list, relabels one of the same names in another order, names the differences otherwise', () => {
    expect(matchClasses(set(['a', 'b', 'c'], [0, 1, 2]), ['a', 'b', 'c']).kind).toBe('same');
    const reordered = matchClasses(set(['a', 'b', 'c'], [0, 1, 2, 2]), ['c', 'a', 'b']);
    expect(reordered.kind).toBe('reordered');
    if (reordered.kind === 'reordered') {
      expect(reordered.set.classes).toEqual(['c', 'a', 'b']);
      expect([...reordered.set.labels]).toEqual([1, 2, 0, 0]);
    }
    expect(matchClasses(set(['a', 'b', 'zz_c'], [0]), ['a', 'b', 'c'])).toEqual({ kind: 'different', onlyData: ['zz_c'], onlyModel: ['c'] });
    // Some of the model's classes (cat and dog of CIFAR-10's ten): scored by name, not refused.
    const subset = matchClasses(set(['b', 'c'], [0, 1, 1]), ['a', 'b', 'c']);
    expect(subset.kind).toBe('subset');
    if (subset.kind === 'subset') {
      expect(subset.set.classes).toEqual(['a', 'b', 'c']);
      expect([...subset.set.labels]).toEqual([1, 2, 2]);
    }
    expect(matchClasses(set(['a', 'b'], [0]), ['a', 'a', 'b']).kind).toBe('different');
  });

  it('training on some of the model\'s classes is a warning naming the classes it forgets and the way out; scoring on them a note', () => {
    const lines: string[] = [];
    const names = ['a', 'b', 'c', 'd'];
    labelledForModel(set(['b', 'c'], [0, 1]), { file: 'm.onnx', names }, { note: (l) => lines.push(l) });
    labelledForModel(set(['b', 'c'], [0, 1]), { file: 'm.onnx', names, trains: (n) => `pass --new-head for ${n.data} classes, or all ${n.model}` }, { note: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/^note: .* has 2 of the 4 classes m\.onnx records \(slimkit\.classes\): its images are matched to the model's outputs by class name$/);
    expect(lines[1]).toMatch(/^warning: .* has 2 of the 4 classes m\.onnx records \(slimkit\.classes\): training on it teaches the outputs of the other 2 \(a, d\) never to win, so the model forgets them — pass --new-head for 2 classes, or all 4$/);
  });
});

describe('scoring by class name', () => {
  it('slim eval, bench and quantize --eval score a model that records its classes in another order by name — as the same function in folder order', async () => {
    const byPosition = await runSlim(['eval', unnamed, '--data', folder, '--json']);
    expect(byPosition.code, byPosition.stderr).toBe(0);
    expect(byPosition.stderr).not.toMatch(/by class name|--limit/);
    // A --limit above the folder's count says what was used (it used to pass in silence).
    const limited = await runSlim(['eval', unnamed, '--data', folder, '--limit', '20000', '--json']);
    expect(limited.stderr).toMatch(new RegExp(`note: --limit 20000 is more than .*photos/val holds: evaluating all ${(JSON.parse(byPosition.stdout) as { eval_images: number }).eval_images} images`));
    const counts = (out: string): unknown => (({ eval_images, top1 }) => ({ eval_images, top1 }))(JSON.parse(out) as { eval_images: number; top1: number });
    expect(counts(limited.stdout)).toEqual(counts(byPosition.stdout));
    // Scored by position, and it says so with the folder order it assumes.
    expect(byPosition.stderr).toMatch(/note: .*unnamed\.onnx records no class names \(slimkit\.classes\): output i is scored as the i-th class folder of .*photos\/val \(0=cat, 1=dog, 2=frog\)/);
    const byName = await runSlim(['eval', permuted, '--data', folder, '--json']);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stderr).not.toMatch(/records no class names/);
    expect(byName.stderr).toMatch(/photos\/val has the classes .*permuted\.onnx records \(slimkit\.classes\) in another order: its images are matched to the model's outputs by class name/);
    const a = JSON.parse(byPosition.stdout) as { top1: number; eval_images: number; per_class: { name: string; correct: number; total: number }[] };
    const b = JSON.parse(byName.stdout) as typeof a;
    expect(a.eval_images).toBe(15); // val/ is the test split of a train/ + val/ folder
    // Three classes: every label is in the top 5, so there is no top-5 figure (it read 1).
    expect((JSON.parse(byPosition.stdout) as { top5: unknown }).top5).toBeNull();
    // Per class, by name: position would give each class the hits of another.
    const perName = (r: typeof a) => Object.fromEntries(r.per_class.map((c) => [c.name, [c.correct, c.total]]));
    expect(perName(b)).toEqual(perName(a));
    expect(b.top1).toBe(a.top1);

    const bench = await runSlim(['bench', unnamed, permuted, '--data', folder, '--runs', '50', '--warmup', '1', '--json']);
    expect(bench.code, bench.stderr).toBe(0);
    expect(bench.stderr.match(/records no class names/g)).toHaveLength(1);
    expect(bench.stderr).toMatch(/note: .*unnamed\.onnx records no class names/);
    const rows = (JSON.parse(bench.stdout) as { models: { top1: number }[] }).models;
    expect(rows.map((r) => r.top1)).toEqual([a.top1, a.top1]);

    const int8 = path.join(dir, 'permuted.int8.onnx');
    const q = await runSlim(['quantize', permuted, '-o', int8, '--calib', folder, '--eval', folder, '--samples', '12', '--method', 'minmax', '--json']);
    expect(q.code, q.stderr).toBe(0);
    expect((JSON.parse(q.stdout) as { top1_before: number }).top1_before).toBe(a.top1);
    // It says which images calibrated: train/ of a split folder, never the test images.
    expect((JSON.parse(q.stdout) as { calibration_data: string }).calibration_data).toMatch(/photos\/train$/);
    // A quantized model keeps the names of its input.
    expect(await classesOf(int8)).toEqual(['dog', 'frog', 'cat']);
  }, 180_000);

  it('data whose class names differ from the ones the model records is refused, naming them; a model without names is scored by position', async () => {
    const renamed = path.join(dir, 'renamed');
    cpSync(folder, renamed, { recursive: true });
    for (const split of ['train', 'val']) renameSync(path.join(renamed, split, 'cat'), path.join(renamed, split, 'zz_cat'));
    const refusal = /renamed\/val: its classes are not the ones .*permuted\.onnx records \(slimkit\.classes\): only the data has zz_cat; only the model has cat — rename the class folders to the model's names \(dog, frog, cat\), or use data of the classes the model was trained on/;
    const evaluated = await runSlim(['eval', permuted, '--data', renamed]);
    // A pair that does not fit: usage (exit 2), as a class count that differs.
    expect(evaluated.code).toBe(2);
    expect(evaluated.stderr).toMatch(refusal);
    expect(evaluated.stderr.trim().split('\n')).toHaveLength(1);
    const bench = await runSlim(['bench', permuted, '--data', renamed, '--runs', '50']);
    expect(bench.code).toBe(2);
    expect(bench.stderr).toMatch(refusal);
    expect(bench.stderr).not.toMatch(/p50/); // refused before the timing runs
    const quantized = await runSlim(['quantize', permuted, '-o', path.join(dir, 'x.onnx'), '--calib', renamed, '--eval', renamed]);
    expect(quantized.code).toBe(2);
    expect(quantized.stderr).toMatch(refusal);
    const pruned = await runSlim(['prune', permuted, '-o', path.join(dir, 'x.onnx'), '--structured', '--ratio', '0.25', '--data', renamed]);
    expect(pruned.code).toBe(2);
    expect(pruned.stderr).toMatch(/renamed\/train: its classes are not the ones .*only the data has zz_cat; only the model has cat/);
    // Calibration reads images only: any folder of the model's kind of images will do.
    const calibrated = await runSlim(['quantize', permuted, '-o', path.join(dir, 'calib.onnx'), '--calib', renamed, '--samples', '12', '--method', 'minmax']);
    expect(calibrated.code, calibrated.stderr).toBe(0);
    // No names recorded: positions decide, as before.
    const plain = await runSlim(['eval', unnamed, '--data', renamed]);
    expect(plain.code, plain.stderr).toBe(0);
  }, 120_000);
});

describe('recipes', () => {
  it("a run's data is labelled by the class names its model file records", async () => {
    const names = ['dog', 'frog', 'cat'];
    const notes: string[] = [];
    const data = await loadRunData({ dataset: folder }, { baseDir: dir, seed: 0, inputSize: [32, 32], classes: { file: 'model.onnx', names }, log: (l) => notes.push(l) });
    expect(data.train.classes).toEqual(names);
    expect(data.test.classes).toEqual(names);
    // Folder order cat, dog, frog: cat's images (first) are the model's class 2.
    expect([...data.train.labels.subarray(0, 7)]).toEqual([2, 2, 2, 2, 2, 2, 0]);
    expect(notes).toHaveLength(1);
    await expect(loadRunData({ dataset: folder }, { baseDir: dir, seed: 0, inputSize: [32, 32], classes: { file: 'model.onnx', names: ['dog', 'frog', 'bird'] } }))
      .rejects.toThrow(/only the data has cat; only the model has bird/);
  });
});

describe.skipIf(!nativeAvailable())('commands that train record the class names', () => {
  it('slim train on an image folder and on CIFAR-10: the model records the class names; deploy labels by them', async () => {
    const trained = path.join(dir, 'trained.onnx');
    const train = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', folder, '--epochs', '1', '--batch', '6', '--threads', '2', '--out', trained, '--json'], { timeoutMs: 180_000 });
    expect(train.code, train.stderr).toBe(0);
    expect(await classesOf(trained)).toEqual(NAMES);
    // The statistics a zoo model records on photos are said, with the folder's own to pass instead.
    const said = /note: resnet18-cifar normalizes its images with CIFAR-10's mean and std \(recorded in the model written\); to use .*train's own, pass --mean ([\d.,]+) --std ([\d.,]+)\n/.exec(train.stderr);
    expect(said, train.stderr).not.toBeNull();
    const own = pixelStatistics((await loadImageFolder(path.join(folder, 'train'))));
    expect(said![1]!.split(',').map(Number)).toEqual(own.mean.map((v) => Number(v.toFixed(3))));
    expect(said![2]!.split(',').map(Number)).toEqual(own.std.map((v) => Number(v.toFixed(3))));
    const bundle = path.join(dir, 'bundle');
    const deployed = await runSlim(['deploy', trained, '--target', 'linux-x64', '--out', bundle]);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).not.toMatch(/records no class names/);
    expect(parseBundleConfig(readFileSync(path.join(bundle, 'slim.json'), 'utf8'), 'slim.json').labels).toEqual(NAMES);
    // --image-size builds the zoo model for that size, and the folder's images are resized to it.
    const larger = path.join(dir, 'trained-48.onnx');
    const at48 = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', folder, '--epochs', '1', '--batch', '6', '--threads', '2', '--image-size', '48,40', '--out', larger, '--no-verify'], { timeoutMs: 180_000 });
    expect(at48.code, at48.stderr).toBe(0);
    const built = await readModel(larger);
    expect(built.inputs[0]!.shape).toEqual(['batch', 3, 48, 40]);
    expect(JSON.parse(built.metadata['slimkit.input_size']!)).toEqual([3, 48, 40]);

    const cifar = realCifar10Dir();
    if (cifar) {
      const onCifar = path.join(dir, 'cifar.onnx');
      const run = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', cifar, '--epochs', '1', '--train-limit', '64', '--test-limit', '64', '--batch', '32', '--threads', '2', '--out', onCifar, '--no-verify'], { timeoutMs: 180_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(await classesOf(onCifar)).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    }
  }, 300_000);

  it('slim distill, quantize --qat and prune --finetune record the names of the data they train on', async () => {
    const student = path.join(dir, 'student.onnx');
    const distilled = await runSlim(['distill', '--teacher', unnamed, '--student', 'resnet18-cifar', '--width', '0.125', '--data', folder, '--epochs', '1', '--batch', '6', '--threads', '2', '--out', student, '--no-verify'], { timeoutMs: 180_000 });
    expect(distilled.code, distilled.stderr).toBe(0);
    expect(await classesOf(student)).toEqual(NAMES);

    const qat = path.join(dir, 'qat.onnx');
    const q = await runSlim(['quantize', unnamed, '-o', qat, '--qat', '--data', folder, '--epochs', '1', '--batch', '6', '--samples', '12', '--method', 'minmax'], { timeoutMs: 180_000 });
    expect(q.code, q.stderr).toBe(0);
    expect(await classesOf(qat)).toEqual(NAMES);

    const pruned = path.join(dir, 'pruned.onnx');
    const p = await runSlim(['prune', unnamed, '-o', pruned, '--structured', '--ratio', '0.25', '--round-to', '1', '--finetune', '1', '--batch', '6', '--data', folder], { timeoutMs: 180_000 });
    expect(p.code, p.stderr).toBe(0);
    expect(await classesOf(pruned)).toEqual(NAMES);
    // Pruning without training keeps what its input records: nothing here.
    const plain = path.join(dir, 'plain.onnx');
    expect((await runSlim(['prune', unnamed, '-o', plain, '--structured', '--ratio', '0.25'])).code).toBe(0);
    expect(await classesOf(plain)).toBeUndefined();
  }, 400_000);

  it("a recipe's training stage records the data's class names in a model file that had none", async () => {
    const recipe = path.join(dir, 'names.yaml');
    writeFileSync(recipe, ['name: names', `data: { dataset: ${folder} }`, `model: { file: ${unnamed}, id: src }`, 'stages:', '  - finetune: { id: ft, from: src, epochs: 1, batch: 6 }', ''].join('\n'));
    const run = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'run'), '--threads', '1', '--no-report'], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(await classesOf(path.join(dir, 'run', 'models', 'ft.onnx'))).toEqual(NAMES);
  }, 240_000);

  it('a model that records names is trained on data of the same names by name, and on other names as their own, with a note', async () => {
    // The same names in another order: matched by name, the model keeps its order.
    const tuned = path.join(dir, 'tuned.onnx');
    const same = await runSlim(['train', '--model', permuted, '--data', folder, '--epochs', '1', '--batch', '6', '--threads', '2', '--out', tuned, '--no-verify'], { timeoutMs: 180_000 });
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toMatch(/by class name/);
    expect(await classesOf(tuned)).toEqual(['dog', 'frog', 'cat']);
    // Other names: training teaches the data's classes, and the model written says so.
    const renamed = path.join(dir, 'renamed-train');
    cpSync(folder, renamed, { recursive: true });
    for (const split of ['train', 'val']) renameSync(path.join(renamed, split, 'cat'), path.join(renamed, split, 'zz_cat'));
    const retrained = path.join(dir, 'retrained.onnx');
    const other = await runSlim(['train', '--model', permuted, '--data', renamed, '--epochs', '1', '--batch', '6', '--threads', '2', '--out', retrained, '--no-verify'], { timeoutMs: 180_000 });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stderr).toMatch(/permuted\.onnx records other classes than .*renamed-train\/train \(only the data has zz_cat; only the model has cat\): it is trained on the data's, in their order, and the model written records them/);
    expect(await classesOf(retrained)).toEqual(['dog', 'frog', 'zz_cat']);
  }, 300_000);

  it('a model for another number of other classes is refused without a note that it would be trained on them', async () => {
    const two = path.join(dir, 'two-classes');
    cpSync(folder, two, { recursive: true });
    for (const split of ['train', 'val']) {
      rmSync(path.join(two, split, 'frog'), { recursive: true });
      renameSync(path.join(two, split, 'cat'), path.join(two, split, 'zz_cat'));
    }
    const r = await runSlim(['train', '--model', permuted, '--data', two, '--epochs', '1', '--out', path.join(dir, 'two.onnx')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/scores 3 classes but --data has 2 — pass --new-head/);
    expect(r.stderr).not.toMatch(/it is trained on the data's/);
  }, 120_000);
});
