/**
 * int8 outputs against float outputs (ONNX Runtime on both; PyTorch's own output for the exported
 * fixture), for every calibration method, and the same int8 model on onnxruntime-node and
 * onnxruntime-web (wasm).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCifar10 } from '../src/data/cifar10.js';
import { take } from '../src/data/subsets.js';
import { CIFAR10_NORMALIZATION, type ImageSet } from '../src/data/types.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel, readModel } from '../src/onnx/io.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { openSession } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';
import {
  buildQuantized,
  calibratePlan,
  CALIBRATION_METHODS,
  convertFloat16,
  DEFAULT_STATIC,
  imageFeeds,
  planQuantization,
  prepareFloatGraph,
  quantizeDynamic,
  quantizeStatic,
  sampleImages,
  sqnrDb,
  type Feeds,
} from '../src/compress/quantize/index.js';
import { EXACT_ON_HOST } from './helpers/int8-host.js';
import { CIFAR_DIR, fixturePath, REPO_ROOT, torchSidecar } from './helpers/fixtures.js';

const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));

function sqnr(reference: Tensor, test: Tensor): number {
  const r = reference.data as Float32Array;
  const t = test.data as Float32Array;
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < r.length; i++) {
    signal += r[i]! ** 2;
    noise += (r[i]! - t[i]!) ** 2;
  }
  return sqnrDb(signal, noise);
}

async function run(g: Graph, feed: Feeds): Promise<Tensor> {
  const s = await openSession(encodeModel(g).model, { threads: 1, label: g.name });
  try {
    return (await s.run(feed, { outputs: [g.outputs[0]!.name] }))[g.outputs[0]!.name]!;
  } finally {
    await s.close();
  }
}

/** 128 calibration images and 64 held-out ones: CIFAR-10 when present, else seeded noise. */
let calib: Feeds[];
let heldOut: Feeds;
let testSet: ImageSet | undefined;
beforeAll(async () => {
  if (hasCifar) {
    const train = await loadCifar10('train', { dataDir: CIFAR_DIR, limit: 4000 });
    calib = [...imageFeeds(sampleImages(train, 128, 0), { inputName: 'input', normalization: CIFAR10_NORMALIZATION, batchSize: 64 })];
    testSet = take(await loadCifar10('test', { dataDir: CIFAR_DIR, limit: 64 }), 64);
    heldOut = [...imageFeeds(testSet, { inputName: 'input', normalization: CIFAR10_NORMALIZATION, batchSize: 64 })][0]!;
  } else {
    const rng = new Random(9);
    const noise = (n: number): Feeds => ({ input: float32([n, 3, 32, 32], Array.from({ length: n * 3072 }, () => rng.normal())) });
    calib = [noise(64), noise(64)];
    heldOut = noise(64);
  }
});

describe('int8 close to float', () => {
  it('ResNet18-CIFAR: every calibration method from one calibration run gives logits within 20 dB SQNR', async () => {
    const float = buildZooModel('resnet18-cifar', { width: 0.25 });
    const prepared = prepareFloatGraph(float, { equalize: false });
    const plan = planQuantization(prepared.graph, prepared.facts, DEFAULT_STATIC);
    const collector = await calibratePlan(prepared, plan, calib, DEFAULT_STATIC.calibration, { threads: 1 });
    const reference = await run(prepared.graph, heldOut);
    const scores: Record<string, number> = {};
    for (const method of CALIBRATION_METHODS) {
      const { graph } = buildQuantized(prepared, collector, { ...DEFAULT_STATIC, calibration: { ...DEFAULT_STATIC.calibration, method } });
      scores[method] = sqnr(reference, await run(graph, heldOut));
    }
    for (const method of CALIBRATION_METHODS) expect(scores[method], `${method}: ${JSON.stringify(scores)}`).toBeGreaterThan(20);
  });

  it('the PyTorch ResNet export: int8 output close to PyTorch\'s own output', async () => {
    const float = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const side = torchSidecar('torch-tiny-resnet.onnx');
    const rng = new Random(3);
    // The sidecar input is standard normal noise: calibrate on the same distribution.
    const feeds = [0, 1, 2, 3].map(() => ({ input: float32([16, 3, 16, 16], Array.from({ length: 16 * 768 }, () => rng.normal())) }));
    const { graph } = await quantizeStatic(float, feeds, DEFAULT_STATIC, { threads: 1 });
    expect(sqnr(side.output, await run(graph, { input: side.input }))).toBeGreaterThan(20);
  });

  it('bias correction and equalization keep the output close (and equalization keeps the float model exact)', async () => {
    const float = buildZooModel('resnet18-cifar', { width: 0.25 });
    const reference = await run(prepareFloatGraph(float, { equalize: false }).graph, heldOut);
    const equalized = prepareFloatGraph(float, { equalize: true });
    expect(equalized.equalized!.pairs).toHaveLength(8);
    expect(sqnr(reference, await run(equalized.graph, heldOut))).toBeGreaterThan(80);
    const { graph } = await quantizeStatic(float, calib, { ...DEFAULT_STATIC, biasCorrection: true, equalize: true }, { threads: 1 });
    expect(sqnr(reference, await run(graph, heldOut))).toBeGreaterThan(20);
  });

  it('dynamic int8 and float16 outputs stay close to float', async () => {
    for (const file of ['torch-tiny-resnet.onnx', 'torch-tiny-mobilenet.onnx']) {
      const float = await readModel(fixturePath(file));
      const side = torchSidecar(file);
      const feed = { [float.inputs[0]!.name]: side.input };
      // uint8 weights where onnxruntime-node's int8 sums saturate (helpers/int8-host.ts).
      const dynamic = quantizeDynamic(float, { perChannel: true, exclude: [], reduceRange: false, ...EXACT_ON_HOST });
      expect(dynamic.layers, file).toHaveLength(1);
      expect(sqnr(side.output, await run(dynamic.graph, feed)), `${file} dynamic`).toBeGreaterThan(25);
      for (const mode of ['full', 'weights'] as const) {
        const half = convertFloat16(float, mode);
        expect(half.graph.initializers.size, file).toBeGreaterThan(0);
        expect([...half.graph.initializers.values()].some((t) => t.dtype === 'float32'), `${file} ${mode}`).toBe(false);
        expect(sqnr(side.output, await run(half.graph, feed)), `${file} fp16 ${mode}`).toBeGreaterThan(40);
      }
    }
  });
});

describe('the int8 model on onnxruntime-web (wasm) and onnxruntime-node', () => {
  it('gives the same top-1 class on real images, and logits that agree', async () => {
    // The web's int8 kernels are exact; onnxruntime-node's are where its sums cannot saturate (helpers/int8-host.ts).
    const { graph } = await quantizeStatic(buildZooModel('resnet18-cifar', { width: 0.25, seed: 4 }), calib, { ...DEFAULT_STATIC, ...EXACT_ON_HOST }, { threads: 1 });
    const bytes = encodeModel(graph).model;
    const native = await run(graph, heldOut);
    ortWeb.env.wasm.wasmPaths = path.join(REPO_ROOT, 'node_modules/onnxruntime-web/dist/');
    ortWeb.env.wasm.numThreads = 1;
    const session = await ortWeb.InferenceSession.create(bytes);
    const input = heldOut['input']!;
    const out = await session.run({ input: new ortWeb.Tensor('float32', input.data as Float32Array, input.dims) });
    const web = out['logits']!;
    await session.release();
    const n = native.data as Float32Array;
    const w = web.data as Float32Array;
    expect(w.length).toBe(n.length);
    const argmax = (d: Float32Array, row: number): number => {
      let best = 0;
      for (let j = 1; j < 10; j++) if (d[row * 10 + j]! > d[row * 10 + best]!) best = j;
      return best;
    };
    const rows = n.length / 10;
    const same = Array.from({ length: rows }, (_, r) => argmax(n, r) === argmax(w, r));
    expect(same.every(Boolean)).toBe(true);
    expect(sqnr(native, { dtype: 'float32', dims: web.dims, data: w })).toBeGreaterThan(30);
  });

  it('runs the quantized MobileNet-style export (QLinear Sigmoid / LeakyRelu / Concat / AveragePool, float HardSwish) alike', async () => {
    const float = await readModel(fixturePath('torch-tiny-mobilenet.onnx'));
    const side = torchSidecar('torch-tiny-mobilenet.onnx');
    const rng = new Random(6);
    const dims = [8, ...side.input.dims.slice(1)];
    const feeds = [{ input: float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal())) }];
    const { graph } = await quantizeStatic(float, feeds, { ...DEFAULT_STATIC, ...EXACT_ON_HOST }, { threads: 1 });
    const native = await run(graph, { input: side.input });
    ortWeb.env.wasm.wasmPaths = path.join(REPO_ROOT, 'node_modules/onnxruntime-web/dist/');
    ortWeb.env.wasm.numThreads = 1;
    const session = await ortWeb.InferenceSession.create(encodeModel(graph).model);
    const out = await session.run({ input: new ortWeb.Tensor('float32', side.input.data as Float32Array, side.input.dims) });
    await session.release();
    const web = out[graph.outputs[0]!.name]!.data as Float32Array;
    const n = native.data as Float32Array;
    for (let i = 0; i < n.length; i++) expect(Math.abs(web[i]! - n[i]!)).toBeLessThan(1e-4);
    expect(sqnr(side.output, native)).toBeGreaterThan(15);
  });
});
