/**
 * Folders read a chunk at a time (src/data/stream.ts) score exactly as the folder loaded whole, and data
 * sets of more than 256 classes keep their labels (they were bytes: label 299 read as 43). Oracles: the
 * whole-folder load's evaluation, and models whose every prediction is known by construction.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeListing, listImageFolder, loadImageFolder } from '../src/data/image-folder.js';
import { folderSource, interleavedHalf, openImageFolder, sourceOfSet, type ImageSource } from '../src/data/stream.js';
import { decodePool } from '../src/data/decode-pool.js';
import { evaluateModel } from '../src/toolkit.js';
import { loadDataset, openDataset, recordedClasses } from '../src/data/model-data.js';
import { encodeModel, writeModel } from '../src/onnx/io.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { float32 } from '../src/onnx/tensor.js';
import { DENSE_CONFUSION_CLASSES, evaluate } from '../src/runtime/evaluate.js';
import { jsonText } from '../src/cli/output.js';
import { openSession } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import type { ImageSet, Normalization } from '../src/data/types.js';
import { removeTempDirs, tempDir } from './data-fixtures.js';
import { runSlim } from './helpers/cli.js';
import { top1 } from '../src/cli/commands/quantize-eval.js';

afterAll(removeTempDirs);

const identity: Normalization = { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] };
const node = (opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node => ({ name: `${opType}_${outputs[0]}`, opType, domain: '', inputs, outputs, attributes });

/** [N, 3, H, W] → its three channel means: the brightest channel is the prediction. */
function brightestChannel(size: number): Graph {
  return {
    ...emptyGraph('brightest'),
    inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, size, size] }],
    outputs: [{ name: 'scores', dtype: 'float32', shape: ['N', 3] }],
    nodes: [node('GlobalAveragePool', ['x'], ['pooled']), node('Flatten', ['pooled'], ['scores'])],
  };
}

/** [N, 3, 4, 4] → `classes` scores: each image's pixels (×`weight`) dotted with a fixed random matrix, plus a bias. */
function linearClassifier(classes: number, bias: number[], weight = 0): Graph {
  const rng = new Random(7);
  return {
    ...emptyGraph('linear'),
    inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }],
    outputs: [{ name: 'scores', dtype: 'float32', shape: ['N', classes] }],
    nodes: [node('Flatten', ['x'], ['flat']), node('Gemm', ['flat', 'w', 'b'], ['scores'])],
    initializers: new Map([
      ['w', float32([48, classes], Array.from({ length: 48 * classes }, () => weight * (rng.next() - 0.5)))],
      ['b', float32([classes], bias)],
    ]),
  };
}

async function png(file: string, rgb: [number, number, number], size = 8): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.alloc(size * size * 3).map((_, i) => rgb[i % 3]!), { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
}

describe('an image folder read a chunk at a time', () => {
  let root: string;
  beforeAll(async () => {
    // 45 images in 3 classes of random colours: about a third predicted right.
    root = tempDir('stream');
    const rng = new Random(3);
    const writes: Promise<void>[] = [];
    for (const [c, name] of ['a', 'b', 'c'].entries()) {
      for (let i = 0; i < 15 + c; i++) writes.push(png(path.join(root, name, `${String(i).padStart(2, '0')}.png`), [rng.int(256), rng.int(256), rng.int(256)]));
    }
    await Promise.all(writes);
  });

  it('scores as the folder loaded whole: top-1, top-5, confusion and every prediction', async () => {
    const model = await openSession(encodeModel(brightestChannel(8)).model, { threads: 1, label: 'brightest.onnx' });
    const set = await loadImageFolder(root, { size: [8, 8] });
    const whole = await evaluate(model, set, { normalization: identity, batchSize: 4, keepPredictions: true });
    const listing = await listImageFolder(root);
    const source = folderSource(listing, { size: [8, 8], chunkBytes: 7 * 3 * 8 * 8 });
    let chunks = 0;
    for await (const chunk of source.chunks()) {
      chunks++;
      expect(chunk.labels.length).toBeLessThanOrEqual(7);
    }
    expect(chunks).toBe(Math.ceil(48 / 7));
    const seen: number[] = [];
    const streamed = await evaluate(model, source, { normalization: identity, batchSize: 4, keepPredictions: true, onProgress: (done) => seen.push(done) });
    await model.close();
    expect(streamed.count).toBe(48);
    expect(whole.top1).toBeGreaterThan(0.1);
    expect({ ...streamed, seconds: 0, imagesPerSecond: 0 }).toEqual({ ...whole, seconds: 0, imagesPerSecond: 0 });
    // The labels beside the predictions (slim bench's paired test reads both; a stream keeps no set).
    expect(streamed.labels).toEqual(set.labels);
    // Progress counts the whole folder, not each chunk.
    expect(seen.at(-1)).toBe(48);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });

  it('stops at a limit inside a chunk', async () => {
    const model = await openSession(encodeModel(brightestChannel(8)).model, { threads: 1, label: 'brightest.onnx' });
    const set = await loadImageFolder(root, { size: [8, 8] });
    const source = folderSource(await listImageFolder(root), { size: [8, 8], chunkBytes: 7 * 3 * 8 * 8 });
    const [whole, streamed] = [await evaluate(model, set, { normalization: identity, limit: 20, keepPredictions: true }), await evaluate(model, source, { normalization: identity, limit: 20, keepPredictions: true })];
    await model.close();
    expect(streamed.count).toBe(20);
    expect(streamed.confusion).toEqual(whole.confusion);
    expect([streamed.labels, streamed.predictions]).toEqual([set.labels.slice(0, 20), whole.predictions]);
  });

  it('splits into two disjoint halves of every other image, across chunk edges and up to a limit (--max-drop chooses on one, reports on the other)', async () => {
    const set = await loadImageFolder(root, { size: [8, 8] });
    // Chunks of 7 images: odd-sized, so every other chunk starts on the other half's image.
    const source = folderSource(await listImageFolder(root), { size: [8, 8], chunkBytes: 7 * 3 * 8 * 8 });
    const read = async (s: ImageSource): Promise<{ labels: number[]; pixels: number[] }> => {
      const out = { labels: [] as number[], pixels: [] as number[] };
      for await (const chunk of s.chunks()) out.labels.push(...chunk.labels), out.pixels.push(...chunk.pixels);
      return out;
    };
    const image = 3 * 8 * 8;
    for (const limit of [undefined, 20, 21]) {
      const wanted = limit ?? 48;
      const halves = [interleavedHalf(source, 0, limit), interleavedHalf(source, 1, limit)];
      expect(halves.map((h) => h.count)).toEqual([Math.ceil(wanted / 2), Math.floor(wanted / 2)]);
      for (const part of [0, 1] as const) {
        const got = await read(halves[part]!);
        const indices = Array.from({ length: wanted }, (_, i) => i).filter((i) => i % 2 === part);
        expect(got.labels).toEqual(indices.map((i) => set.labels[i]));
        expect(got.pixels).toEqual(indices.flatMap((i) => Array.from(set.pixels.subarray(i * image, (i + 1) * image))));
      }
    }
    // A folder lists one class after another; each half still holds every class in proportion.
    const counts = (labels: number[]) => [0, 1, 2].map((c) => labels.filter((l) => l === c).length);
    expect(counts((await read(interleavedHalf(sourceOfSet(set), 1))).labels)).toEqual([7, 8, 9]);
  });

  it('names every unreadable image at once, in whichever chunk it lies, and yields no chunk after the first', async () => {
    const broken = tempDir('stream-broken');
    fs.cpSync(root, broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'a', '03.png'), 'not a png');
    fs.writeFileSync(path.join(broken, 'c', '16.png'), Buffer.alloc(0));
    const source = folderSource(await listImageFolder(broken), { size: [8, 8], chunkBytes: 7 * 3 * 8 * 8 });
    const yielded: number[] = [];
    const error = await (async () => {
      for await (const chunk of source.chunks()) yielded.push(chunk.labels.length);
    })().catch((e: unknown) => e as Error);
    expect((error as Error).message).toMatch(/2 images cannot be read — a\/03\.png: cannot read image .*; c\/16\.png: cannot read image: the file is empty/);
    expect(yielded).toEqual([]);
    // skipBad: the two are left out, every other image is read.
    const skipping = folderSource(await listImageFolder(broken), { size: [8, 8], chunkBytes: 7 * 3 * 8 * 8, skipBad: true });
    let count = 0;
    for await (const chunk of skipping.chunks()) count += chunk.labels.length;
    expect(count).toBe(46);
    // Scored so, progress still reaches the source's count: the two left out are passed, not missing.
    const model = await openSession(encodeModel(brightestChannel(8)).model, { threads: 1, label: 'brightest.onnx' });
    const reported: number[] = [];
    const result = await evaluate(model, skipping, { normalization: identity, batchSize: 4, onProgress: (done, total) => reported.push(done, total) });
    await model.close();
    expect(result.count).toBe(46);
    expect(reported.slice(-2)).toEqual([48, 48]);
    for (let i = 2; i < reported.length; i += 2) expect(reported[i]!).toBeGreaterThanOrEqual(reported[i - 2]!);
    // A limit met in the first chunk stops there: the unreadable images further on are never asked for
    // (the limit was checked only when the next chunk came, whose failure then ended the evaluation).
    const later = tempDir('stream-broken-later');
    fs.cpSync(root, later, { recursive: true });
    fs.writeFileSync(path.join(later, 'b', '10.png'), 'not a png'); // image 25: the second chunk of 20
    const limited = await evaluateModel(brightestChannel(8), folderSource(await listImageFolder(later), { size: [8, 8], chunkBytes: 20 * 3 * 8 * 8 }), { limit: 2, threads: 1, normalization: identity });
    expect(limited.count).toBe(2);
    // Nor one in the same chunk past the limit: the source decodes only the images asked for.
    fs.writeFileSync(path.join(later, 'a', '05.png'), 'not a png');
    const inChunk = await evaluateModel(brightestChannel(8), folderSource(await listImageFolder(later), { size: [8, 8], chunkBytes: 20 * 3 * 8 * 8 }), { limit: 2, threads: 1, normalization: identity });
    expect(inChunk.count).toBe(2);
  });

  it('evaluateModel takes a folder opened a chunk at a time, and refuses a chunk that is not of the source', async () => {
    const graph = { ...brightestChannel(8), metadata: { 'slimkit.mean': '[0,0,0]', 'slimkit.std': '[1,1,1]' } };
    const whole = await evaluateModel(graph, await loadImageFolder(root, { size: [8, 8] }), { threads: 1 });
    const streamed = await evaluateModel(graph, await openImageFolder(root, { size: [8, 8], chunkBytes: 5 * 3 * 8 * 8 }), { threads: 1 });
    expect(streamed.confusion).toEqual(whole.confusion);
    expect(streamed.top1).toBe(whole.top1);
    const set = await loadImageFolder(root, { size: [8, 8] });
    const lying = { ...sourceOfSet(set), imageShape: [3, 4, 4] as [number, number, number] };
    await expect(evaluateModel({ ...graph, inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 'H', 'W'] }] }, lying, { threads: 1 })).rejects.toThrow(/a chunk holds 48 labels of 3 classes and 9216 pixel bytes of 3×8×8 images; the source has 3 classes of 3×4×4 images/);
  });

  it('openDataset streams past the chunk size, labelled by the class names the model records', async () => {
    const classes = { file: 'm.onnx', names: ['c', 'b', 'a'] };
    const options = { data: root };
    const whole = await loadDataset(options, [8, 8], 3, classes);
    const source = await openDataset(options, [8, 8], 3, classes, { chunkBytes: 10 * 3 * 8 * 8 });
    expect(source.classes).toEqual(['c', 'b', 'a']);
    expect(source.count).toBe(48);
    const labels: number[] = [];
    const pixels: number[] = [];
    for await (const chunk of source.chunks()) {
      expect(chunk.classes).toEqual(['c', 'b', 'a']);
      labels.push(...chunk.labels);
      pixels.push(...chunk.pixels);
    }
    expect(labels).toEqual([...whole.labels]);
    expect(Buffer.from(Uint8Array.from(pixels)).equals(Buffer.from(whole.pixels))).toBe(true);
    // Folder a's images are the model's class 2.
    expect(labels.slice(0, 15)).toEqual(new Array(15).fill(2));
    // Classes the model does not record are refused before any image is decoded.
    await expect(openDataset(options, [8, 8], 3, { file: 'm.onnx', names: ['x', 'y', 'z'] })).rejects.toThrow(/its classes are not the ones m\.onnx records/);
  });

  it("held whole up to wholeUpTo (slim quantize scores its set many times); slim quantize's top-1 of a streamed set is the whole set's", async () => {
    const options = { data: root };
    const chunkCount = async (o: { chunkBytes: number; wholeUpTo?: number }) => {
      let n = 0;
      for await (const _ of (await openDataset(options, [8, 8], 3, undefined, o)).chunks()) n++;
      return n;
    };
    expect(await chunkCount({ chunkBytes: 10 * 3 * 8 * 8 })).toBe(5);
    expect(await chunkCount({ chunkBytes: 10 * 3 * 8 * 8, wholeUpTo: 48 * 3 * 8 * 8 })).toBe(1);
    const model = brightestChannel(8);
    const streamed = await openDataset(options, [8, 8], 3, undefined, { chunkBytes: 10 * 3 * 8 * 8 });
    const whole = sourceOfSet(await loadDataset(options, [8, 8]));
    const [a, b] = [await top1(model, { source: streamed, streamed: true, limit: 40 }, identity, 1, 'eval'), await top1(model, { source: whole, streamed: false, limit: 40 }, identity, 1, 'eval')];
    expect(a).toBe(b);
  });
});

describe('the pool of decoding threads', () => {
  it('decodes a folder as one thread does, byte for byte, and names unreadable images the same way', async () => {
    const root = tempDir('pool');
    const rng = new Random(11);
    // 40 images (the pool takes 32 or more) of several sizes and aspect ratios, one of them grayscale.
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const [w, h] = [9 + rng.int(30), 9 + rng.int(30)];
      const channels = i === 7 ? 1 : 3;
      const pixels = Buffer.from(Array.from({ length: w * h * channels }, () => rng.int(256)));
      const file = path.join(root, `c${i % 2}`, `${String(i).padStart(2, '0')}.${i % 3 ? 'png' : 'jpg'}`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      await sharp(pixels, { raw: { width: w, height: h, channels } }).toFile(file);
    }));
    const listing = await listImageFolder(root);
    const pooled = await decodeListing(listing, { size: [12, 10] });
    expect(decodePool()!.started).toBeGreaterThan(0);
    // Fewer than 32 at a time: decoded on this thread.
    const parts = await Promise.all([0, 20].map((from) => decodeListing(listing, { size: [12, 10] }, { from, to: from + 20 })));
    expect(Buffer.from(pooled.pixels).equals(Buffer.concat(parts.map((p) => Buffer.from(p.pixels))))).toBe(true);
    expect([...pooled.labels]).toEqual(parts.flatMap((p) => [...p.labels]));
    fs.writeFileSync(path.join(root, 'c1', '05.png'), 'not an image');
    await expect(decodeListing(listing, { size: [12, 10] })).rejects.toThrow(/c1\/05\.png: cannot read image \(.*\) — replace or delete the file/);
    const skipping = await decodeListing(listing, { size: [12, 10], skipBad: true });
    expect(skipping.skipped.map((b) => path.basename(b.file))).toEqual(['05.png']);
    expect(skipping.labels.length).toBe(39);
  });
});

describe('more than 256 classes', () => {
  let root: string;
  beforeAll(async () => {
    root = tempDir('classes300');
    await Promise.all(Array.from({ length: 300 }, (_, k) => png(path.join(root, `class${String(k).padStart(3, '0')}`, 'x.png'), [k % 256, k >> 8, 0], 4)));
  });

  it('keeps every label: image k is class k up to 299', async () => {
    const set: ImageSet = await loadImageFolder(root, { size: [4, 4] });
    expect(set.classes.length).toBe(300);
    expect([...set.labels]).toEqual(Array.from({ length: 300 }, (_, k) => k));
  });

  it('slim eval scores class 299 as class 299', async () => {
    // Scores favour class 299 for every image: only its image is right.
    const bias = new Array<number>(300).fill(0);
    bias[299] = 1;
    const file = path.join(tempDir('classes300-model'), 'linear.onnx');
    await writeModel(linearClassifier(300, bias), file);
    const run = await runSlim(['eval', file, '--data', root, '--json']);
    expect(run.stderr).toMatch(/records no class names/);
    expect(run.code).toBe(0);
    const json = JSON.parse(run.stdout) as { eval_images: number; top1: number; per_class: { name: string; correct: number; total: number }[]; confusion: number[][]; seconds: number; wall_seconds: number };
    expect(json.eval_images).toBe(300);
    // The model's seconds, and the command's with reading the folder.
    expect(json.wall_seconds).toBeGreaterThan(json.seconds);
    expect(json.top1).toBeCloseTo(1 / 300, 10);
    expect(json.per_class[299]).toEqual({ name: 'class299', correct: 1, total: 1, accuracy: 1 });
    expect(json.confusion[43]![299]).toBe(1);
    // A line per confusion row, not one per number (1,000 classes made a million lines).
    expect(run.stdout.split('\n').length).toBeLessThan(3000); // 90,000 with a number a line
    expect(jsonText({ rows: [[1, 0], [0, 2]], text: 'a [ 1 ] b', names: ['x'] })).toBe('{\n  "rows": [\n    [1, 0],\n    [0, 2]\n  ],\n  "text": "a [ 1 ] b",\n  "names": [\n    "x"\n  ]\n}');
    // The text lists the least and the most accurate classes, not 300 rows.
    const text = await runSlim(['eval', file, '--data', root]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/per class: the 10 least and 5 most accurate of 300; every class with --json/);
    expect(text.stdout).toMatch(/… 285 more/);
    expect(text.stdout).toMatch(/class299\s+1\s+1\s+100\.0 %\s*$/m);
    expect(text.stdout.split('\n').length).toBeLessThan(30);
  }, 60_000);

  it(`past ${DENSE_CONFUSION_CLASSES} classes the confusion matrix is its non-zero cells (20,000² numbers ran out of memory)`, async () => {
    const classes = DENSE_CONFUSION_CLASSES + 52;
    const bias = new Array<number>(classes).fill(0);
    bias[classes - 1] = 1;
    const model = await openSession(encodeModel(linearClassifier(classes, bias)).model, { threads: 1, label: 'wide.onnx' });
    const labels = [0, classes - 1, 5, 5, 1000];
    const set: ImageSet = { name: 'wide', classes: Array.from({ length: classes }, (_, k) => `c${k}`), imageShape: [3, 4, 4], pixels: new Uint8Array(labels.length * 48), labels: Uint16Array.from(labels) };
    const result = await evaluate(model, set, { normalization: identity });
    await model.close();
    expect(result.confusion).toBeUndefined();
    expect(result.confusionPairs).toEqual([[0, classes - 1, 1], [5, classes - 1, 2], [1000, classes - 1, 1], [classes - 1, classes - 1, 1]]);
    expect(result.top1).toBeCloseTo(0.2, 10);
    expect(result.perClass[classes - 1]).toMatchObject({ correct: 1, total: 1 });
  });

  it('refuses a folder past 65,535 classes, saying how many are supported', async () => {
    const many = tempDir('classes-many');
    // Listing refuses on the count alone: empty class folders are enough.
    for (let k = 0; k < 65_536; k++) fs.mkdirSync(path.join(many, `c${k}`));
    await expect(listImageFolder(many)).rejects.toThrow(/has 65536 class folders; at most 65535 classes are supported/);
    // A model naming more classes than labels can hold: images matched to the last ones would wrap onto others.
    const names = Array.from({ length: 70_000 }, (_, k) => `c${k}`);
    expect(() => recordedClasses({ ...brightestChannel(8), metadata: { 'slimkit.classes': JSON.stringify(names) } }, 'wide.onnx')).toThrow(/wide\.onnx: metadata 'slimkit\.classes': names 70000 classes; slimkit labels at most 65535/);
  }, 60_000);
});
