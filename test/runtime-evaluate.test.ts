/**
 * evaluate() on models whose predictions are known by construction: the "model" outputs each channel's
 * mean pixel, so with identity normalization its argmax is the brightest channel and every expected
 * count below is worked out by hand. Then 200 real CIFAR-10 test images against a plain ORT loop.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION, type ImageSet, type Normalization } from '../src/data/types.js';
import { SlimError } from '../src/errors.js';
import { decodeModel, encodeModel } from '../src/onnx/io.js';
import { emptyGraph, type Dim, type Graph, type Node } from '../src/onnx/graph.js';
import { float32, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { evaluate, nanScoresWarning, NO_PREDICTION } from '../src/runtime/evaluate.js';
import { openSession, type OrtModel } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { realCifar10Dir } from './data-fixtures.js';
import { runSlim } from './helpers/cli.js';
import { prepareModel } from '../src/deploy/prepare-model.js';
import { withPixelPreprocessing } from './helpers/deploy-models.js';
import { exportNotes } from '../src/cli/commands/info.js';
import { fixedImageSize, hasFreeImageSize, imageInputShapes, pinImageSize, takesChannelsLast } from '../src/onnx/image-input.js';
import { toChannelsLast } from '../src/data/transforms.js';
import { openClassifier } from '../src/serve/classifier.js';

function node(opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node {
  return { name: `${opType}_${outputs[0]}`, opType, domain: '', inputs, outputs, attributes };
}

/** [N, C, H, W] → [N, C] channel means (uint8 input is cast to float first). */
function channelMeans(inputDims: Dim[], dtype: 'float32' | 'uint8' = 'float32'): Graph {
  const cast = dtype === 'uint8' ? [node('Cast', ['x'], ['xf'], { to: { type: 'int', value: 1 } })] : [];
  return {
    ...emptyGraph('channel-means'),
    inputs: [{ name: 'x', dtype, shape: inputDims }],
    outputs: [{ name: 'means', dtype: 'float32', shape: [inputDims[0]!, inputDims[1]!] }],
    nodes: [...cast, node('GlobalAveragePool', [cast.length ? 'xf' : 'x'], ['pooled']), node('Flatten', ['pooled'], ['means'])],
  };
}

async function session(graph: Graph): Promise<OrtModel> {
  return openSession(encodeModel(graph).model, { threads: 1, label: `${graph.name}.onnx` });
}

const identity = (channels: number): Normalization => ({ scale: 1, mean: new Array(channels).fill(0), std: new Array(channels).fill(1) });

/** Images whose channel c is filled with values[i][c]. */
function setOf(values: number[][], labels: number[], classes: number, hw = 2): ImageSet {
  const channels = values[0]!.length;
  const plane = hw * hw;
  const pixels = new Uint8Array(values.length * channels * plane);
  values.forEach((v, i) => v.forEach((value, c) => pixels.fill(value, (i * channels + c) * plane, (i * channels + c + 1) * plane)));
  return {
    name: 'hand-made',
    classes: Array.from({ length: classes }, (_, k) => `class${k}`),
    imageShape: [channels, hw, hw],
    pixels,
    labels: Uint16Array.from(labels),
  };
}

async function errorOf(p: Promise<unknown>): Promise<SlimError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(SlimError);
  return e as SlimError;
}

// Seven 3-channel images; the brightest channel is the prediction.
const BRIGHT = [
  [200, 10, 10], // pred 0
  [10, 200, 10], // pred 1
  [10, 10, 200], // pred 2
  [90, 80, 70], // pred 0
  [1, 2, 3], // pred 2
  [50, 60, 55], // pred 1
  [9, 9, 8], // tie between 0 and 1 → 0 (lower index, like numpy argmax)
];
const BRIGHT_LABELS = [0, 1, 1, 2, 2, 1, 0];
// confusion[true][pred]: label 0 → preds 0, 0; label 1 → preds 1, 2, 1; label 2 → preds 0, 2.
const BRIGHT_CONFUSION = [
  [2, 0, 0],
  [0, 2, 1],
  [1, 0, 1],
];

describe('evaluate on hand-made sets', () => {
  it('top-1, confusion and per-class accuracy equal the hand count, across batches', async () => {
    const model = await session(channelMeans(['N', 3, 2, 2]));
    const progress: [number, number][] = [];
    const result = await evaluate(model, setOf(BRIGHT, BRIGHT_LABELS, 3), {
      batchSize: 3,
      normalization: identity(3),
      onProgress: (done, total) => progress.push([done, total]),
      keepPredictions: true,
    });
    await model.close();
    expect(result.count).toBe(7);
    expect([...result.predictions!]).toEqual([0, 1, 2, 0, 2, 1, 0]);
    expect(result.confusion).toEqual(BRIGHT_CONFUSION);
    expect(result.top1).toBeCloseTo(5 / 7, 12);
    expect(result.top5).toBe(1); // only 3 classes: every label is within the top 5
    expect(result.perClass).toEqual([
      { name: 'class0', correct: 2, total: 2, accuracy: 1 },
      { name: 'class1', correct: 2, total: 3, accuracy: 2 / 3 },
      { name: 'class2', correct: 1, total: 2, accuracy: 0.5 },
    ]);
    expect(progress).toEqual([[3, 7], [6, 7], [7, 7]]);
    expect(result.seconds).toBeGreaterThan(0);
    expect(result.imagesPerSecond).toBeCloseTo(7 / result.seconds, 6);
  });

  it('the same result for every batch size, for a fixed-batch model (padded) and for a uint8-input model', async () => {
    const set = setOf(BRIGHT, BRIGHT_LABELS, 3);
    for (const [graph, batchSize] of [
      [channelMeans(['N', 3, 2, 2]), 1],
      [channelMeans(['N', 3, 2, 2]), 256],
      [channelMeans([4, 3, 2, 2]), undefined],
      [channelMeans(['N', 3, 'H', 'W'], 'uint8'), 2],
      [channelMeans([2, 3, 2, 2], 'uint8'), undefined],
    ] as const) {
      const model = await session(graph);
      const result = await evaluate(model, set, { ...(batchSize ? { batchSize } : {}), normalization: identity(3) });
      await model.close();
      expect(result.confusion).toEqual(BRIGHT_CONFUSION);
    }
  });

  it('limit evaluates the first images only', async () => {
    const model = await session(channelMeans(['N', 3, 2, 2]));
    const result = await evaluate(model, setOf(BRIGHT, BRIGHT_LABELS, 3), { batchSize: 2, limit: 3, normalization: identity(3) });
    await model.close();
    expect(result.count).toBe(3);
    expect(result.confusion).toEqual([[1, 0, 0], [0, 1, 1], [0, 0, 0]]);
    expect(result.top1).toBeCloseTo(2 / 3, 12);
  });

  it('top-5 counts a label when fewer than 5 classes outrank it (ties to the lower index)', async () => {
    // 8 classes, 1×1 images: the scores are the pixels themselves.
    const strict = [80, 70, 60, 50, 40, 30, 20, 10]; // class k has rank k
    const tied = new Array(8).fill(5); // ranks follow the class index
    const values = [strict, strict, strict, strict, tied, tied, tied];
    const labels = [0, 4, 5, 7, 0, 4, 5];
    const model = await session(channelMeans(['N', 8, 1, 1]));
    const result = await evaluate(model, setOf(values, labels, 8, 1), { normalization: identity(8) });
    await model.close();
    // top-1 hits: label 0 twice. top-5 hits: labels 0 and 4 (ranks 0 and 4), twice each.
    expect(result.top1).toBeCloseTo(2 / 7, 12);
    expect(result.top5).toBeCloseTo(4 / 7, 12);
    expect(result.confusion!.map((row) => row[0])).toEqual([2, 0, 0, 0, 2, 2, 0, 1]);
    expect(result.perClass[4]).toEqual({ name: 'class4', correct: 0, total: 2, accuracy: 0 });
    expect(result.perClass[1]).toEqual({ name: 'class1', correct: 0, total: 0, accuracy: 0 });
  });

  it('an image scored NaN is a miss in top-1 and top-5, outside the confusion matrix, and counted', async () => {
    // sqrt(mean − 100): NaN for every channel darker than 100. NaN compares false with everything, so
    // before, an all-NaN row predicted class 0 and counted every label within the top 5.
    const means = channelMeans(['N', 3, 2, 2]);
    const graph: Graph = {
      ...means,
      initializers: new Map([['hundred', float32([1], [100])]]),
      outputs: [{ ...means.outputs[0]!, name: 'root' }],
      nodes: [...means.nodes, node('Sub', ['means', 'hundred'], ['shifted']), node('Sqrt', ['shifted'], ['root'])],
    };
    const model = await session(graph);
    const values = [[200, 110, 120], [110, 200, 120], [200, 10, 10], [10, 10, 10]];
    const result = await evaluate(model, setOf(values, [0, 0, 0, 1], 3), { normalization: identity(3), keepPredictions: true });
    await model.close();
    expect(result.nanImages).toBe(2);
    expect(result.top1).toBeCloseTo(1 / 4, 12);
    expect(result.top5).toBeCloseTo(2 / 4, 12);
    expect(result.confusion).toEqual([[1, 1, 0], [0, 0, 0], [0, 0, 0]]);
    expect(result.perClass.map((c) => [c.correct, c.total])).toEqual([[1, 3], [0, 1], [0, 0]]);
    expect([...result.predictions!]).toEqual([0, 1, NO_PREDICTION, NO_PREDICTION]);
    expect(nanScoresWarning('m.onnx', result)).toMatch(/^warning: m\.onnx gave NaN class scores for 2 of 4 images \(counted wrong\)/);
    expect(nanScoresWarning('m.onnx', { nanImages: 0, count: 4 })).toBeUndefined();
  });

  it('normalization is applied: subtracting a per-channel mean changes the brightest channel', async () => {
    // Pixels [100, 90, 80] with means [60, 0, 0] give scores [40, 90, 80] → class 1.
    const model = await session(channelMeans(['N', 3, 2, 2]));
    const result = await evaluate(model, setOf([[100, 90, 80]], [1], 3), {
      normalization: { scale: 1, mean: [60, 0, 0], std: [1, 1, 1] },
    });
    await model.close();
    expect(result.confusion![1]).toEqual([0, 1, 0]);
  });

  it('rejects a model whose input size differs from the data, naming both', async () => {
    const model = await session(channelMeans(['N', 3, 224, 224]));
    const set = setOf([[1, 2, 3]], [0], 3, 32);
    set.name = 'cifar10/test';
    const e = await errorOf(evaluate(model, set, { normalization: CIFAR10_NORMALIZATION }));
    await model.close();
    // Neither file is wrong, their pairing is: usage (exit 2), as slim train and quantize say it.
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('channel-means.onnx');
    expect(e.message).toContain('expects images [N, 3, 224, 224]');
    expect(e.message).toContain('cifar10/test has 3×32×32 images');
  });

  it('rejects a model with the wrong number of class scores, and a bad normalization', async () => {
    const model = await session(channelMeans(['N', 3, 2, 2]));
    const fourClasses = setOf(BRIGHT, BRIGHT_LABELS, 4);
    const e = await errorOf(evaluate(model, fourClasses, { normalization: identity(3) }));
    expect(e.message).toContain("output 'means': has dims [N, 3]; evaluation needs [N, 4] scores for a 4-class data set");
    expect(e.kind).toBe('usage');
    const norm = await errorOf(evaluate(model, setOf(BRIGHT, BRIGHT_LABELS, 3), { normalization: { scale: 1, mean: [0, 0], std: [1, 1] } }));
    expect(norm.kind).toBe('usage');
    expect(norm.message).toContain('normalization has 2 means');
    await model.close();
  });
});

const realDir = realCifar10Dir();

describe.skipIf(!realDir)('evaluate on 200 real CIFAR-10 test images', () => {
  /** conv 3→16 (3×3, stride 2) → relu → global average pool → gemm 16→10, seeded random weights. */
  function smallCnn(): Graph {
    const rng = new Random(7);
    const randn = (dims: number[], scale: number): Tensor => {
      const t = makeTensor('float32', dims);
      for (let i = 0; i < t.data.length; i++) (t.data as Float32Array)[i] = rng.normal() * scale;
      return t;
    };
    return {
      ...emptyGraph('small-cnn'),
      inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 3, 32, 32] }],
      outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 10] }],
      nodes: [
        node('Conv', ['input', 'w1', 'b1'], ['c1'], {
          strides: { type: 'ints', value: [2, 2] },
          pads: { type: 'ints', value: [1, 1, 1, 1] },
        }),
        node('Relu', ['c1'], ['r1']),
        node('GlobalAveragePool', ['r1'], ['g']),
        node('Flatten', ['g'], ['f']),
        node('Gemm', ['f', 'w2', 'b2'], ['logits'], { transB: { type: 'int', value: 1 } }),
      ],
      initializers: new Map([
        ['w1', randn([16, 3, 3, 3], 0.5)],
        ['b1', randn([16], 0.1)],
        ['w2', randn([10, 16], 1)],
        ['b2', float32([10], new Array(10).fill(0))],
      ]),
    };
  }

  it('counts every image once and matches a plain onnxruntime-node loop exactly', async () => {
    const dataDir = realDir!;
    const bytes = encodeModel(smallCnn()).model;
    const set = await loadCifar10('test', { dataDir, limit: 200 });
    const model = await openSession(bytes, { threads: 2 });
    const result = await evaluate(model, set, { batchSize: 64, normalization: CIFAR10_NORMALIZATION, keepPredictions: true });
    await model.close();

    // The oracle: labels straight from the file, and predictions from ORT fed by a hand-written normalization.
    const file = readFileSync(path.join(dataDir, 'test_batch.bin'));
    const labels = Array.from({ length: 200 }, (_, i) => file[i * 3073]!);
    const input = new Float32Array(200 * 3072);
    const { mean, std } = CIFAR10_NORMALIZATION;
    for (let i = 0; i < 200; i++) {
      for (let j = 0; j < 3072; j++) input[i * 3072 + j] = (file[i * 3073 + 1 + j]! / 255 - mean[j >> 10]!) / std[j >> 10]!;
    }
    const plain = await ort.InferenceSession.create(bytes);
    const logits = (await plain.run({ input: new ort.Tensor('float32', input, [200, 3, 32, 32]) })).logits!.data as Float32Array;
    await plain.release();
    const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    const predictions: number[] = [];
    for (let i = 0; i < 200; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      const best = row.indexOf(Math.max(...row));
      predictions.push(best);
      confusion[labels[i]!]![best]!++;
    }

    expect(new Set(predictions).size).toBeGreaterThanOrEqual(3); // the model is not a constant, so the comparison means something
    expect([...result.predictions!]).toEqual(predictions);
    expect(result.count).toBe(200);
    expect(result.perClass.map((c) => c.total)).toEqual(Array.from({ length: 10 }, (_, k) => labels.filter((l) => l === k).length));
    expect(result.perClass.map((c) => c.name)).toEqual(set.classes);
    expect(result.confusion).toEqual(confusion);
    expect(result.top1).toBe(confusion.reduce((a, row, k) => a + row[k]!, 0) / 200);
    expect(result.top5).toBeGreaterThanOrEqual(result.top1);
  });
});

describe('evaluate a model that takes raw channels-last pixels (uint8 N×H×W×C, normalizing inside)', () => {
  /** The fixture behind uint8 NHWC → Transpose → Cast → ·1/255 → −mean → /std: a deployment-style export. */
  async function withPreprocessing(): Promise<{ plain: Graph; wrapped: Graph }> {
    const { readModel } = await import('../src/onnx/io.js');
    const plain = await readModel(path.resolve(import.meta.dirname, 'fixtures/torch-tiny-resnet-folded.onnx'));
    return { plain, wrapped: withPixelPreprocessing(plain) };
  }

  it('feeds interleaved pixels and scores exactly as the float N×C×H×W model on normalized images', async () => {
    const { plain, wrapped } = await withPreprocessing();
    const rng = new Random(5);
    const count = 300;
    const set: ImageSet = {
      name: 'random',
      classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
      imageShape: [3, 16, 16],
      // Per image and channel a ramp of its own slope and direction: varied enough to move the predictions,
      // and a layout mix-up (rows read as channels) would change them.
      pixels: Uint8Array.from({ length: count * 768 }, (_, i) => {
        const [img, c, p] = [Math.floor(i / 768), Math.floor((i % 768) / 256), i % 256];
        const slope = ((img * 7 + c * 13) % 11) - 5;
        return Math.max(0, Math.min(255, 128 + slope * ((c % 2 ? p % 16 : Math.floor(p / 16)) - 8) * 3 + Math.floor(rng.next() * 40)));
      }),
      labels: Uint16Array.from({ length: count }, (_, i) => i % 10),
    };
    const scores = [];
    for (const g of [plain, wrapped]) {
      const session = await openSession(encodeModel(g).model);
      try {
        scores.push(await evaluate(session, set, { normalization: CIFAR10_NORMALIZATION, batchSize: 64, keepPredictions: true }));
      } finally {
        await session.close();
      }
    }
    const [a, b] = scores as [Awaited<ReturnType<typeof evaluate>>, Awaited<ReturnType<typeof evaluate>>];
    expect(new Set(a.predictions).size).toBeGreaterThan(1);
    // Float rounding of the two normalizations may differ in the last bit: the predictions must not.
    expect(Array.from(b.predictions!)).toEqual(Array.from(a.predictions!));
    expect(b.confusion).toEqual(a.confusion);
  });

  it('deploys: the bundle\'s classifier feeds it interleaved pixels and scores as the float model does', async () => {
    const { plain, wrapped } = await withPreprocessing();
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-nhwc-deploy-'));
    try {
      const image = await sharp(Buffer.from(Array.from({ length: 20 * 24 * 3 }, (_, i) => (i * 37) % 256)), { raw: { width: 24, height: 20, channels: 3 } }).png().toBuffer();
      const scores: Float64Array[] = [];
      for (const [name, g] of [['plain', plain], ['pixels', wrapped]] as const) {
        const file = path.join(dir, `${name}.onnx`);
        writeFileSync(file, encodeModel(g).model);
        const prepared = await prepareModel(file, { target: 'linux-x64' });
        expect(prepared.config.preprocess.layout).toBe(name === 'plain' ? 'NCHW' : 'NHWC');
        const classifier = await openClassifier({ config: { ...prepared.config, target: 'linux-x64', createdBy: { slimkit: 'test', onnxruntime: 'test', sharp: 'test' } }, model: prepared.bytes });
        try {
          scores.push((await classifier.run([await classifier.prepare(image)]))[0]!);
        } finally {
          await classifier.close();
        }
      }
      expect(Math.max(...scores[0]!.map((v, i) => Math.abs(v - scores[1]![i]!)))).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads its layout from the graph: free H×W pinned and benchmarked channels-last; a 4-pixel-wide N×C×H×W input stays N×C×H×W', async () => {
    const { wrapped } = await withPreprocessing();
    const free: Graph = { ...wrapped, inputs: [{ name: 'pixels', dtype: 'uint8', shape: ['n', 'h', 'w', 3] }] };
    expect(takesChannelsLast(free)).toBe(true);
    expect(hasFreeImageSize(free)).toBe(true);
    expect(pinImageSize(free, [16, 16]).inputs[0]!.shape).toEqual(['n', 16, 16, 3]);
    expect(imageInputShapes(free, [16, 16])).toEqual({ pixels: [1, 16, 16, 3] });
    expect(fixedImageSize(wrapped)).toEqual([16, 16]);
    expect(exportNotes(wrapped)).toEqual([expect.stringMatching(/^takes raw uint8 N×H×W×C pixels and preprocesses them itself \(Transpose → Cast → Mul → Sub → Div\): eval, bench and deploy take it as it is; quantize, prune and train work on the network after that/)]);
    // Shaped like channels-last, but a Conv reads it: 64 channels of 8×4.
    const g = emptyGraph('wide', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 64, 8, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.initializers.set('w', float32([2, 64, 1, 1], new Array(128).fill(1)));
    g.nodes = [{ name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }];
    expect(takesChannelsLast(g)).toBe(false);
    expect(fixedImageSize(g)).toEqual([8, 4]);
    expect(Array.from(toChannelsLast(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), [2, 2, 1]))).toEqual([1, 3, 2, 4, 5, 7, 6, 8]);
  });

  it('slim quantize --eval scores it as it is; calibration and recipe stages work on the network inside it', async () => {
    const { wrapped } = await withPreprocessing();
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-nhwc-'));
    try {
      const file = path.join(dir, 'pixels.onnx');
      writeFileSync(file, encodeModel(wrapped).model);
      const images = path.join(dir, 'images');
      for (const split of ['train', 'test']) {
        for (let c = 0; c < 10; c++) {
          mkdirSync(path.join(images, split, `c${c}`), { recursive: true });
          await sharp(Buffer.alloc(16 * 16 * 3, 25 * c), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(images, split, `c${c}`, '0.png'));
        }
      }
      // Evaluation feeds the pixels as the model takes them.
      const evaluated = await runSlim(['quantize', file, '-o', path.join(dir, 'q.onnx'), '--mode', 'dynamic', '--eval', images, '--json']);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      expect(JSON.parse(evaluated.stdout).eval_images).toBe(10);
      // Calibration feeds the network after the model's own preprocessing; the int8 model takes the pixels.
      const calibrated = await runSlim(['quantize', file, '-o', path.join(dir, 'q8.onnx'), '--calib', images, '--json']);
      expect(calibrated.code, calibrated.stderr).toBe(0);
      expect(calibrated.stderr).toMatch(/takes uint8 N×H×W×C images and preprocesses them itself \(Transpose → Cast → Mul → Sub → Div\): working on the network after that/);
      const int8 = decodeModel(readFileSync(path.join(dir, 'q8.onnx')));
      expect(int8.inputs).toEqual(wrapped.inputs);
      expect(int8.nodes.slice(0, 6).map((n) => n.opType)).toEqual(['Transpose', 'Cast', 'Mul', 'Sub', 'Div', 'QuantizeLinear']);
      // A recipe's static quantize stage too (its variants are the network: float32 N×C×H×W with the mean and std).
      const recipe = path.join(dir, 'r.yaml');
      writeFileSync(recipe, `name: pixels\ndata: { dataset: ${images} }\nmodel: { file: ${file} }\nstages:\n  - quantize: { id: q, samples: 10 }\n`);
      const run = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'run'), '--no-report', '--threads', '1']);
      expect(run.code, run.stderr).toBe(0);
      const variant = decodeModel(readFileSync(path.join(dir, 'run', 'models', 'q.onnx')));
      expect(variant.inputs[0]).toMatchObject({ dtype: 'float32', shape: ['n', 3, 16, 16] });
      expect(JSON.parse(variant.metadata['slimkit.std']!)).toEqual(CIFAR10_NORMALIZATION.std.map((v) => expect.closeTo(v, 6)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
