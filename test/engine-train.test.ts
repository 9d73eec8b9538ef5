import './helpers/engine-env.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { batches } from '../src/data/batches.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION, type ImageSet } from '../src/data/types.js';
import { SlimError } from '../src/errors.js';
import { batchOf, planEpoch } from '../src/engine/epoch.js';
import { nativeAvailable, type NativeOptimizerConfig } from '../src/engine/native.js';
import { DeviceImageSet, EnginePlan } from '../src/engine/plan.js';
import { makeSchedule } from '../src/engine/schedule.js';
import { chanceLoss, trainModel } from '../src/engine/train.js';
import { cpuHasAmxBf16 } from '../src/engine/precision.js';
import { readCheckpoint, writeCheckpoint } from '../src/engine/checkpoint.js';
import { encodeModel, readModel } from '../src/onnx/io.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { float32, int64, type Tensor } from '../src/onnx/tensor.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { DEFAULT_STATIC, quantizeStatic } from '../src/compress/quantize/index.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { countParameters } from '../src/zoo/params.js';
import { smallCnn } from './helpers/engine-nets.js';
import { fixturePath } from './helpers/fixtures.js';

const DATA_DIR = process.env.SLIM_DATA_DIR ?? path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'cifar10');
const HELPER = path.join(import.meta.dirname, 'helpers', 'torch-engine-grad.py');
const available = nativeAvailable();
const scratch = mkdtempSync(path.join(tmpdir(), 'slim-train-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function randomImages(n: number, seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32([n, 3, 32, 32], Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()));
}

function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]! - b[k]!) / (1 + Math.abs(b[k]!)));
  return m;
}

describe('schedules', () => {
  it('OneCycle equals torch.optim.lr_scheduler.OneCycleLR step by step', () => {
    const script = [
      'import torch, json',
      'p = torch.nn.Parameter(torch.zeros(1))',
      'o = torch.optim.SGD([p], lr=0.1)',
      's = torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.4, total_steps=37, cycle_momentum=False)',
      'lrs = []',
      'for _ in range(37):',
      '    lrs.append(o.param_groups[0]["lr"]); o.step(); s.step()',
      'print(json.dumps(lrs))',
    ].join('\n');
    const torchLrs = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' })) as number[];
    const ours = makeSchedule({ name: 'onecycle', lr: 0.4, totalSteps: 37 });
    torchLrs.forEach((lr, step) => expect(ours(step)).toBeCloseTo(lr, 12));
  });

  it('cosine warms up linearly, peaks at lr and decays to the floor', () => {
    const s = makeSchedule({ name: 'cosine', lr: 1, totalSteps: 100, warmup: 0.1, minLr: 0.01 });
    expect(s(0)).toBeCloseTo(0.1, 12);
    expect(s(9)).toBeCloseTo(1, 12);
    expect(s(10)).toBeCloseTo(1, 12);
    expect(s(55)).toBeCloseTo(0.01 + 0.99 * 0.5, 12);
    expect(s(100)).toBeCloseTo(0.01, 12);
  });

  it('a learning rate that is not positive is named as the option a program passes, with no other command\'s default', () => {
    // Library calls name options as a program writes them (lr), not as flags; and QAT's default is not 0.1.
    expect(() => makeSchedule({ name: 'cosine', lr: -1, totalSteps: 10 })).toThrow(/^the learning rate \(lr\) must be a positive number, got -1 — leave it out for the default of what trains/);
  });
});

/** `steps` updates of `graph` by the engine and by torch.optim (the Python oracle) from the same weights. */
async function againstTorchOptim(label: string, graph: Graph, config: NativeOptimizerConfig, smoothing: number): Promise<EnginePlan> {
  const plan = EnginePlan.create(graph, { threads: 1 });
  plan.setOptimizer(config);
  const x = randomImages(8, 6);
  const labels = Int32Array.from({ length: 8 }, (_, k) => (k * 3) % 10);
  const lr = config.kind === 'sgd' ? 0.05 : 0.01;
  const steps = 4;
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) losses.push((await plan.trainStepOn(x, labels, { lr, labelSmoothing: smoothing })).loss);

  const folder = path.join(scratch, `optim-${label}`);
  mkdirSync(folder);
  const tensors = [...graph.initializers];
  tensors.forEach(([, t], j) => {
    const data = t.data as ArrayBufferView;
    writeFileSync(path.join(folder, `${j}.bin`), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  writeFileSync(path.join(folder, 'x.bin'), Buffer.from(x.data.buffer));
  writeFileSync(path.join(folder, 'labels.bin'), Buffer.from(labels.buffer));
  writeFileSync(path.join(folder, 'case.json'), JSON.stringify({
    nodes: graph.nodes.map((n) => ({ op: n.opType, inputs: n.inputs, outputs: n.outputs, attrs: Object.fromEntries(Object.entries(n.attributes).map(([k, a]) => [k, a.value])) })),
    opset: 17,
    training: true,
    input: { name: graph.inputs[0]!.name, dims: [8, 3, 32, 32] },
    output: graph.outputs[0]!.name,
    params: plan.paramNames,
    state: plan.stateNames,
    tensors: Object.fromEntries(tensors.map(([n, t]) => [n, { dims: t.dims, dtype: t.dtype }])),
    train: {
      steps, kind: config.kind, lr, momentum: config.momentum ?? 0, nesterov: config.nesterov ?? false,
      weight_decay: config.weightDecay ?? 0, decay: plan.compiled.tensors.filter((t) => t.decay).map((t) => t.name),
      beta1: config.beta1 ?? 0.9, beta2: config.beta2 ?? 0.999, eps: config.eps ?? 1e-8, label_smoothing: smoothing,
    },
  }));
  execFileSync('/usr/bin/python3', [HELPER, folder], { stdio: ['ignore', 'inherit', 'inherit'] });
  const ref = JSON.parse(readFileSync(path.join(folder, 'result.json'), 'utf8')) as { losses: number[]; params: Record<string, number[]>; state: Record<string, number[]> };
  expect(maxRelError(losses, ref.losses)).toBeLessThan(1e-5);
  for (const n of plan.paramNames) expect(maxRelError(plan.read(n), ref.params[n]!), n).toBeLessThan(1e-5);
  for (const n of plan.stateNames) expect(maxRelError(plan.read(n), ref.state[n]!), n).toBeLessThan(1e-5);
  return plan;
}

/**
 * torch.onnx's GroupNorm (Reshape → InstanceNormalization with constant 1s and 0s → Reshape → Mul γ →
 * Add β) and a ConvNeXt-style layer scale (Mul by a [C, 1, 1] parameter) between a Conv and the head.
 */
function groupNormNet(): Graph {
  const rng = new Random(9);
  const g = emptyGraph('group-norm', 17);
  g.inputs = [{ name: 'input', dtype: 'float32', shape: ['batch', 3, 32, 32] }];
  const node = (name: string, opType: string, inputs: string[], attributes: Node['attributes'] = {}): Node => ({ name, opType, domain: '', inputs, outputs: [name], attributes });
  g.nodes = [
    node('conv', 'Conv', ['input', 'conv.weight'], { kernel_shape: { type: 'ints', value: [3, 3] }, strides: { type: 'ints', value: [2, 2] } }),
    node('grouped', 'Reshape', ['conv', 'groups']),
    node('norm', 'InstanceNormalization', ['grouped', 'ones', 'zeros']),
    node('ungrouped', 'Reshape', ['norm', 'conv_shape']),
    node('gn_scale', 'Mul', ['ungrouped', 'gn.weight']),
    node('gn_shift', 'Add', ['gn_scale', 'gn.bias']),
    node('relu', 'Relu', ['gn_shift']),
    node('scaled', 'Mul', ['relu', 'layer_scale']),
    node('pool', 'GlobalAveragePool', ['scaled']),
    node('flat', 'Flatten', ['pool']),
    node('logits', 'Gemm', ['flat', 'fc.weight', 'fc.bias'], { transB: { type: 'int', value: 1 } }),
  ];
  g.outputs = [{ name: 'logits', dtype: 'float32', shape: ['batch', 10] }];
  const randn = (dims: number[], scale: number): Tensor => float32(dims, Array.from({ length: dims.reduce((a, d) => a * d, 1) }, () => scale * rng.normal()));
  g.initializers.set('conv.weight', randn([8, 3, 3, 3], 0.3));
  g.initializers.set('groups', int64([3], [0, 4, -1]));
  g.initializers.set('ones', float32([4], [1, 1, 1, 1]));
  g.initializers.set('zeros', float32([4], [0, 0, 0, 0]));
  g.initializers.set('conv_shape', int64([4], [0, 8, 15, 15]));
  g.initializers.set('gn.weight', float32([8, 1, 1], Array.from({ length: 8 }, () => 1 + 0.2 * rng.normal())));
  g.initializers.set('gn.bias', randn([8, 1, 1], 0.2));
  g.initializers.set('layer_scale', float32([8, 1, 1], Array.from({ length: 8 }, () => 0.5 + rng.next())));
  g.initializers.set('fc.weight', randn([10, 8], 0.3));
  g.initializers.set('fc.bias', randn([10], 0.1));
  return g;
}

describe.skipIf(!available)('optimizer steps vs torch.optim', () => {
  const cases: [string, NativeOptimizerConfig, number][] = [
    ['SGD, Nesterov momentum, weight decay on weights only, label smoothing', { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-3 }, 0.1],
    ['SGD, plain momentum', { kind: 'sgd', momentum: 0.8, nesterov: false, weightDecay: 0 }, 0],
    ['AdamW', { kind: 'adamw', weightDecay: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-7 }, 0.05],
  ];
  for (const [name, config, smoothing] of cases) {
    it(name, async () => {
      const plan = await againstTorchOptim(`${name.length}-${config.kind}`, smallCnn({ seed: 5, widths: [4, 8, 8] }), config, smoothing);
      // Weight decay only where the compiler put it: conv and linear weights, not BN or biases.
      expect(plan.compiled.tensors.filter((t) => t.decay).map((t) => t.name).sort()).toEqual(['conv0.weight', 'conv1.weight', 'conv2.weight', 'fc.weight']);
    });
  }

  it("GroupNorm's affine and a layer scale train as PyTorch trains them; the export's InstanceNorm 1s and 0s do not", async () => {
    const plan = await againstTorchOptim('group-norm', groupNormNet(), { kind: 'sgd', momentum: 0.9, nesterov: false, weightDecay: 5e-3 }, 0);
    expect([...plan.paramNames].sort()).toEqual(['conv.weight', 'fc.bias', 'fc.weight', 'gn.bias', 'gn.weight', 'layer_scale']);
    expect(plan.compiled.tensors.filter((t) => t.decay).map((t) => t.name).sort()).toEqual(['conv.weight', 'fc.weight']);
    expect(Array.from(plan.read('layer_scale'))).not.toEqual(Array.from(groupNormNet().initializers.get('layer_scale')!.data as Float32Array));
  });
});

describe.skipIf(!available)('training hooks', () => {
  it('on-device crop + flip + normalization equal the CPU batch pipeline image for image', () => {
    const rng = new Random(2);
    const set: ImageSet = {
      name: 'random',
      classes: ['a', 'b'],
      imageShape: [3, 32, 32],
      pixels: Uint8Array.from({ length: 40 * 3072 }, () => rng.int(256)),
      labels: Uint16Array.from({ length: 40 }, () => rng.int(2)),
    };
    const device = DeviceImageSet.upload(set, { normalization: CIFAR10_NORMALIZATION, pad: 4 });
    const epoch = 3;
    const plan = planEpoch(40, { seed: 77, epoch, augment: { crop: 4, flip: true } });
    const cpu = [...batches(set, { batchSize: 16, normalization: CIFAR10_NORMALIZATION, shuffleSeed: 77, epoch, augment: { crop: 4, flip: true, seed: 77 }, dropLast: true })];
    expect(cpu.length).toBe(2);
    cpu.forEach((expected, b) => {
      const batch = batchOf(plan, b, 16);
      expect(Array.from(batch.indices)).toEqual(Array.from(expected.indices));
      const ours = device.native.batch(batch.indices, batch.aug ?? null);
      expect(Array.from(ours.labels)).toEqual(Array.from(expected.labels));
      expect(maxRelError(ours.images, expected.images)).toBeLessThan(1e-5);
    });
    expect(() => device.native.batch(Int32Array.of(0), Int32Array.of(9, 0, 0))).toThrow(/a crop placement \(top, left, flip\) lies outside 0\.\.8 \(the padding is 4\)/);
  });

  it('on-device resized crop + flip equals the CPU batch pipeline, and both equal torch interpolate of the box', () => {
    const rng = new Random(5);
    const [h, w] = [20, 28];
    const set: ImageSet = {
      name: 'random',
      classes: ['a', 'b'],
      imageShape: [3, h, w],
      pixels: Uint8Array.from({ length: 24 * 3 * h * w }, () => rng.int(256)),
      labels: Uint16Array.from({ length: 24 }, () => rng.int(2)),
    };
    const identity = { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] };
    const augment = { crop: 0, flip: true, resized: { minScale: 0.08 } };
    const device = DeviceImageSet.upload(set, { normalization: identity, pad: 0 });
    const plan = planEpoch(24, { seed: 11, epoch: 2, augment, imageSize: [h, w] });
    const cpu = [...batches(set, { batchSize: 8, normalization: identity, shuffleSeed: 11, epoch: 2, augment: { ...augment, seed: 11 }, dropLast: true })];
    expect(cpu.length).toBe(3);
    const boxes: number[][] = [];
    const images: number[][] = [];
    cpu.forEach((expected, b) => {
      const batch = batchOf(plan, b, 8);
      expect(Array.from(batch.indices)).toEqual(Array.from(expected.indices));
      expect(batch.aug!.length).toBe(40);
      const ours = device.native.batch(batch.indices, batch.aug ?? null);
      expect(maxRelError(ours.images, expected.images)).toBeLessThan(1e-5);
      for (let i = 0; i < 8; i++) {
        boxes.push(Array.from(batch.aug!.subarray(5 * i, 5 * i + 5)));
        images.push(Array.from(ours.images.subarray(i * 3 * h * w, (i + 1) * 3 * h * w)));
      }
    });
    // A box past the image is refused before any gather (on CUDA it would be a device assert): one past
    // the right edge read the next row's pixels.
    expect(() => device.native.batch(Int32Array.of(0), Int32Array.of(0, 26, 5, 3, 0))).toThrow(/a resized crop's box \(top, left, height, width, flip\) lies outside the 20×28 images/);
    expect(() => device.native.batch(Int32Array.of(0), Int32Array.of(16, 0, 5, 3, 0))).toThrow(/lies outside/);
    expect(() => device.native.batch(Int32Array.of(0, 1), Int32Array.of(0, 0, 1))).toThrow(/augmentation needs 3 \(crop\) or 5 \(resized crop\) numbers per image/);
    // Boxes of every kind were drawn: small and whole, wide and tall, mirrored and not.
    expect(boxes.some(([, , bh, bw]) => bh! * bw! < 0.3 * h * w)).toBe(true);
    expect(boxes.some(([, , bh, bw]) => bw! / bh! > 1.2) && boxes.some(([, , bh, bw]) => bw! / bh! < 1)).toBe(true);
    expect(new Set(boxes.map((box) => box[4])).size).toBe(2);
    // The oracle: PyTorch's bilinear interpolate (align_corners=False) of each box, then the flip.
    const pixels = boxes.map((_, k) => Array.from(set.pixels.subarray(Number(cpu[Math.floor(k / 8)]!.indices[k % 8]) * 3 * h * w, (Number(cpu[Math.floor(k / 8)]!.indices[k % 8]) + 1) * 3 * h * w)));
    const script = [
      'import json, sys, torch',
      'import torch.nn.functional as F',
      'd = json.load(sys.stdin)',
      'h, w = d["h"], d["w"]',
      'out = []',
      'for px, (top, left, bh, bw, flip) in zip(d["pixels"], d["boxes"]):',
      '    x = torch.tensor(px, dtype=torch.float32).reshape(1, 3, h, w)[:, :, top:top + bh, left:left + bw]',
      '    y = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)',
      '    if flip: y = y.flip(3)',
      '    out.append(y.flatten().tolist())',
      'print(json.dumps(out))',
    ].join('\n');
    const torch = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify({ h, w, pixels, boxes }), encoding: 'utf8', maxBuffer: 64 * 2 ** 20 })) as number[][];
    // torch takes the sample positions in float32 (ours in float64): ~1e-6 of a pixel, times differences up to 255.
    torch.forEach((expected, k) => expect(maxRelError(Float32Array.from(images[k]!), expected), `box ${boxes[k]!.join(',')}`).toBeLessThan(1e-4));
  });

  it('masks keep pruned weights at zero through updates', async () => {
    const plan = EnginePlan.create(smallCnn({ seed: 1, widths: [4, 8, 8] }), { threads: 1 });
    plan.setOptimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 1e-3 });
    const before = plan.read('conv1.weight');
    const mask = Float32Array.from(before, (_, k) => (k % 3 === 0 ? 0 : 1));
    plan.setMask('conv1.weight', mask);
    const x = randomImages(8, 3);
    for (let k = 0; k < 3; k++) await plan.trainStepOn(x, Int32Array.from({ length: 8 }, (_, j) => j), { lr: 0.1 });
    const after = plan.read('conv1.weight');
    let changed = 0;
    after.forEach((w, k) => {
      if (mask[k] === 0) expect(Math.abs(w)).toBe(0);
      else if (w !== before[k]) changed++;
    });
    expect(changed).toBe(mask.filter((m) => m === 1).length);
  });

  it('distillation: loss = α·CE + (1 − α)·T²·KL(teacher ‖ student), computed before the update', async () => {
    // No BN: train and eval forwards agree, so the loss can be recomputed from eval forwards here.
    const student = EnginePlan.create(smallCnn({ seed: 2, widths: [4, 8, 8] }), { threads: 1 });
    const teacher = EnginePlan.create(smallCnn({ seed: 9, widths: [8, 8, 16] }), { threads: 1 });
    student.setOptimizer({ kind: 'sgd', momentum: 0, weightDecay: 0 });
    const x = randomImages(6, 4);
    const labels = Int32Array.of(0, 1, 2, 3, 4, 5);
    const s = student.probe(x, new Float32Array(60), true).output.data; // train-mode logits, no update
    const t = teacher.forward(x)[0]!.data;
    const logSoftmax = (v: Float32Array, row: number, temp: number): number[] => {
      const z = Array.from(v.subarray(row * 10, row * 10 + 10), (e) => e / temp);
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((acc, e) => acc + Math.exp(e - m), 0));
      return z.map((e) => e - lse);
    };
    const T = 3;
    const alpha = 0.3;
    let kl = 0;
    let ce = 0;
    for (let row = 0; row < 6; row++) {
      const ls = logSoftmax(s, row, T);
      const lt = logSoftmax(t, row, T);
      lt.forEach((l, c) => (kl += Math.exp(l) * (l - ls[c]!)));
      ce -= logSoftmax(s, row, 1)[labels[row]!]!;
    }
    const expected = (alpha * ce) / 6 + ((1 - alpha) * T * T * kl) / 6;
    const r = await student.trainStepOn(x, labels, { lr: 0.01, temperature: T, alpha }, teacher);
    expect(r.loss).toBeCloseTo(expected, 4);
  });

  it('refuses a second step before the first resolves', async () => {
    const plan = EnginePlan.create(smallCnn({ widths: [4, 4, 4] }), { threads: 1 });
    plan.setOptimizer({ kind: 'sgd' });
    const x = randomImages(4, 1);
    const first = plan.trainStepOn(x, Int32Array.of(0, 1, 2, 3), { lr: 0.1 });
    await expect(plan.trainStepOn(x, Int32Array.of(0, 1, 2, 3), { lr: 0.1 })).rejects.toThrow(/busy/);
    expect(() => plan.read('fc.weight')).toThrow(/busy/);
    await first;
    expect(plan.read('fc.weight').length).toBe(40);
  });
});

describe.skipIf(!available)('free-size exports', () => {
  // Height and width free (dynamic_axes): GroupNorm's way back from groups and squeeze-excitation's
  // expand_as read them from Shape at run time; training folds them at the data's size.
  const images = (n: number, seed: number): ImageSet => {
    const rng = new Random(seed);
    return { name: 'random', classes: Array.from({ length: 10 }, (_, i) => `c${i}`), imageShape: [3, 16, 16], pixels: Uint8Array.from({ length: n * 768 }, () => rng.int(256)), labels: Uint16Array.from({ length: n }, () => rng.int(10)) };
  };
  for (const name of ['torch-tiny-gnnet', 'torch-tiny-senet']) {
    it(`${name}-free trains at the data's size as its fixed-size export does, and keeps its free size`, async () => {
      const data = { train: images(64, 1), test: images(40, 2) };
      const run = async (file: string): Promise<Awaited<ReturnType<typeof trainModel>>> =>
        trainModel({ graph: await readModel(fixturePath(file)), data, epochs: 1, batch: 16, lr: 0.05, threads: 2, seed: 3, augment: false });
      const free = await run(`${name}-free.onnx`);
      const fixed = await run(`${name}.onnx`);
      expect(free.graph.inputs[0]!.shape).toEqual(['batch', 3, 'height', 'width']);
      // The same plan at 16×16: the same weights, bit for bit.
      for (const [key, t] of fixed.graph.initializers) {
        if (t.dtype === 'float32' && free.graph.initializers.has(key)) expect(Array.from(free.graph.initializers.get(key)!.data as Float32Array), key).toEqual(Array.from(t.data as Float32Array));
      }
      const session = await openSession(encodeModel(free.graph).model);
      try {
        const ort = await evaluate(session, data.test, { normalization: CIFAR10_NORMALIZATION, batchSize: 20 });
        expect(Math.abs(ort.top1 - free.testAccuracy)).toBeLessThanOrEqual(0.0005);
        const at24 = await evaluate(session, { ...images(8, 4), imageShape: [3, 24, 24], pixels: new Uint8Array(8 * 3 * 24 * 24).fill(90) }, { normalization: CIFAR10_NORMALIZATION, batchSize: 8 });
        expect(at24.count).toBe(8);
      } finally {
        await session.close();
      }
    });
  }
});

describe.skipIf(!available)('trainModel on CIFAR-10', () => {
  it('learns a 10k-image subset and exports a BN-folded ONNX that ONNX Runtime scores the same', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 10_000 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 2_000 });
    const log = path.join(scratch, 'train.jsonl');
    const started = performance.now();
    let lastProgress = 0;
    const result = await trainModel({
      graph: smallCnn({ seed: 1 }),
      data: { train, test },
      epochs: 4,
      batch: 128,
      lr: 0.2,
      threads: 2,
      seed: 1,
      log,
      onProgress: (p) => (lastProgress = p.globalStep),
    });
    const seconds = (performance.now() - started) / 1000;
    expect(result.history).toHaveLength(4);
    expect(result.testAccuracy).toBeGreaterThanOrEqual(0.45);
    expect(result.history[3]!.trainLoss).toBeLessThan(result.history[0]!.trainLoss);
    expect(lastProgress).toBe(result.steps);
    expect(result.steps).toBe(4 * Math.floor(10_000 / 128));
    const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; parameters?: number; parameter_tensors?: number });
    expect(records.map((r) => r.event)).toEqual(['start', 'epoch', 'epoch', 'epoch', 'epoch', 'end']);
    // The log counts trainable numbers (every weight, bias, BN scale and shift), and the tensors apart.
    // (It said `params: 14` before: the tensor count, under a name that read as the other.)
    expect(records[0]!.parameters).toBe(countParameters(result.graph));
    expect(records[0]!.parameter_tensors).toBeLessThan(records[0]!.parameters!);
    console.log(`trainModel: 4 epochs of 10k CIFAR-10 images in ${seconds.toFixed(1)} s, test top-1 ${(100 * result.testAccuracy).toFixed(2)} %`);

    // Export path: fold BN into the convs, then ONNX Runtime's top-1 must equal the engine's eval top-1.
    const folded = foldBatchNorm(result.graph);
    expect(folded.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    const session = await openSession(encodeModel(folded).model);
    try {
      const ort = await evaluate(session, test, { normalization: CIFAR10_NORMALIZATION, batchSize: 500 });
      expect(Math.abs(ort.top1 - result.testAccuracy)).toBeLessThanOrEqual(0.0005);
    } finally {
      await session.close();
    }
  });

  it('bf16 autocast on CPU: the step runs in bf16, training learns, evaluation and the written model stay fp32', async () => {
    // One step from the same weights: bf16 changes the loss a little, which shows autocast took effect
    // (before, CPU plans ignored it).
    const x = float32([16, 3, 32, 32], Array.from({ length: 16 * 3072 }, (_, k) => Math.sin(k)));
    const y = Int32Array.from({ length: 16 }, (_, k) => k % 10);
    const firstLoss = async (autocast: 'none' | 'bf16'): Promise<number> => {
      const plan = EnginePlan.create(smallCnn({ seed: 2 }), { threads: 2, autocast });
      plan.setOptimizer({ kind: 'sgd', momentum: 0.9 });
      return (await plan.trainStepOn(x, y, { lr: 0.01 })).loss;
    };
    const [fp32, bf16] = [await firstLoss('none'), await firstLoss('bf16')];
    expect(bf16).not.toBe(fp32);
    expect(Math.abs(bf16 - fp32)).toBeLessThan(0.05);

    // Without AMX-BF16 the CPU emulates bf16 (8.6× as long per step on an AVX2-only EPYC): fewer images there.
    const amx = cpuHasAmxBf16();
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: amx ? 10_000 : 2_560 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 2_000 });
    const result = await trainModel({ graph: smallCnn({ seed: 1 }), data: { train, test }, epochs: 2, batch: 128, lr: 0.2, threads: 2, seed: 1, autocast: 'bf16' });
    expect(result.testAccuracy).toBeGreaterThanOrEqual(amx ? 0.35 : 0.2);
    const session = await openSession(encodeModel(foldBatchNorm(result.graph)).model);
    try {
      const ort = await evaluate(session, test, { normalization: CIFAR10_NORMALIZATION, batchSize: 500 });
      expect(Math.abs(ort.top1 - result.testAccuracy)).toBeLessThanOrEqual(0.0005);
    } finally {
      await session.close();
    }
  }, 300_000);

  it('refuses to resume a checkpoint made with other masks or precision, naming what differs', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 128 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 64 });
    const dir = path.join(scratch, 'fingerprint');
    const graph = smallCnn({ seed: 3, widths: [4, 8, 8] as [number, number, number] });
    const conv = graph.nodes.find((n) => n.opType === 'Conv')!.inputs[1]!;
    const size = graph.initializers.get(conv)!.data.length;
    const mask = (keep: number) => new Map([[conv, Float32Array.from({ length: size }, (_, i) => (i % keep === 0 ? 0 : 1))]]);
    const base = { graph, data: { train, test }, batch: 64, threads: 2, checkpointDir: dir, epochs: 2, testLimit: 64 };
    await trainModel({ ...base, masks: mask(2) });
    const otherMasks = await trainModel({ ...base, masks: mask(3), resume: true }).catch((e: unknown) => e);
    expect(otherMasks).toBeInstanceOf(SlimError);
    // Named by what the user set; a hash is not printed. The way to start over does not need --resume.
    expect(String((otherMasks as Error).message)).toMatch(/other settings \(pruning masks: others now\) — resume with the same options as then, or start a new run with another --checkpoint-dir \(or delete the checkpoint\)/);
    const otherPrecision = await trainModel({ ...base, masks: mask(2), autocast: 'bf16', resume: true }).catch((e: unknown) => e);
    expect(String((otherPrecision as Error).message)).toMatch(/--precision: unset then, "bf16" now/);
    const otherTraining = await trainModel({ ...base, masks: mask(2), seed: 5, trainLimit: 100, resume: path.join(dir, 'last.ckpt') }).catch((e: unknown) => e);
    expect(String((otherTraining as Error).message)).toMatch(/--seed: 0 then, 5 now; training images \(--train-limit\): 128 then, 100 now\) — resume with the same options as then, or start a new run with another --checkpoint-dir/);
    // A --resume FILE alone (no --checkpoint-dir): starting over is a run without --resume.
    const { checkpointDir: _dir, ...noDir } = base;
    const fileOnly = await trainModel({ ...noDir, masks: mask(2), seed: 5, resume: path.join(dir, 'last.ckpt') }).catch((e: unknown) => e);
    expect(String((fileOnly as Error).message)).toMatch(/or start a new run without --resume$/);
    const same = await trainModel({ ...base, masks: mask(2), resume: true });
    expect(same.resumedFrom).toBe(2);
    // Same settings, another model (a --width change): named as such, not as a tensor size error.
    const wider = smallCnn({ seed: 3, widths: [8, 8, 8] as [number, number, number] });
    const plainDir = path.join(scratch, 'fingerprint-model');
    await trainModel({ ...base, checkpointDir: plainDir, epochs: 1 });
    const otherModel = await trainModel({ ...base, checkpointDir: plainDir, epochs: 1, graph: wider, resume: true }).catch((e: unknown) => e);
    expect(otherModel).toBeInstanceOf(SlimError);
    expect(String((otherModel as Error).message)).toMatch(/other settings \(the model it starts from \(--model, --width, --student\): other weights now\) — resume with the same options as then/);
    // Another file of the same architecture (other weights) is not resumed either.
    const sibling = smallCnn({ seed: 4, widths: [4, 8, 8] as [number, number, number] });
    const otherFile = await trainModel({ ...base, checkpointDir: plainDir, epochs: 1, graph: sibling, resume: true }).catch((e: unknown) => e);
    expect(String((otherFile as Error).message)).toMatch(/other settings \(the model it starts from \(--model, --width, --student\): other weights now\)/);
    // Another --seed explains other starting weights only where the seed drew them (a zoo model built fresh).
    const reseeded = async (seededStart: boolean): Promise<string> => String(((await trainModel({ ...base, checkpointDir: plainDir, epochs: 1, graph: sibling, seed: 7, seededStart, resume: true }).catch((e: unknown) => e)) as Error).message);
    expect(await reseeded(false)).toMatch(/other settings \(--seed: 0 then, 7 now; the model it starts from \(--model, --width, --student\): other weights now\)/);
    expect(await reseeded(true)).toMatch(/other settings \(--seed: 0 then, 7 now\) —/);
    // The optimizer's settings by their flags, only the one that differs.
    const otherDecay = await trainModel({ ...base, checkpointDir: plainDir, epochs: 1, weightDecay: 0, resume: true }).catch((e: unknown) => e);
    expect(String((otherDecay as Error).message)).toMatch(/other settings \(--weight-decay 0\.0005 then, 0 now\) —/);
    // Another command's checkpoint is named as such, not by the settings that differ with it; one made
    // before commands were recorded is still compared on its settings.
    const commandDir = path.join(scratch, 'fingerprint-command');
    await trainModel({ ...base, checkpointDir: commandDir, epochs: 1, command: 'slim train' });
    const distilling = await trainModel({ ...base, checkpointDir: commandDir, epochs: 1, command: 'slim distill', teacher: { graph: sibling }, resume: true }).catch((e: unknown) => e);
    expect(distilling).toBeInstanceOf(SlimError);
    expect(String((distilling as Error).message)).toMatch(/last\.ckpt: the checkpoint was made by slim train, not slim distill: a run resumes from its own command's checkpoint — continue that run with slim train --resume, or start a new run with another --checkpoint-dir/);
    expect((await trainModel({ ...base, checkpointDir: plainDir, epochs: 1, command: 'slim train', resume: true })).resumedFrom).toBe(1);
  });

  it('a checkpoint that cannot be written stops the run saying which epoch the last one holds; the log names only kept epochs', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 128 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 64 });
    const dir = path.join(scratch, 'unwritable');
    const logFile = path.join(scratch, 'unwritable.jsonl');
    const last = path.join(dir, 'last.ckpt');
    let blocked = false;
    const error = await trainModel({
      graph: smallCnn({ seed: 3, widths: [4, 8, 8] }), data: { train, test }, batch: 64, threads: 2, checkpointDir: dir, epochs: 2, testLimit: 64, log: logFile,
      // In epoch 2 the checkpoint's place is taken by a folder (as a full disk would refuse it).
      onProgress: (p) => {
        if (p.epoch === 1 && !blocked) {
          blocked = true;
          renameSync(last, `${last}.moved`);
          mkdirSync(path.join(last, 'inside'), { recursive: true });
        }
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlimError);
    expect((error as Error).message).toMatch(/last\.ckpt: .* — it still holds epoch 1, untouched: free space, then run the same command with --resume/);
    const events = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; epoch: number });
    expect(events.filter((e) => e.event === 'epoch').map((e) => e.epoch)).toEqual([1]);
  });

  it('the img/s shown while training leaves out the evaluation between epochs (a trial\'s bar showed 116 for epochs that trained at 159)', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 256 });
    let stalled = false;
    let shown = 0;
    const result = await trainModel({
      graph: smallCnn({ seed: 3, widths: [4, 8, 8] }), data: { train, test: train }, epochs: 2, batch: 32, threads: 2,
      onProgress: (p) => {
        // A slow evaluation after epoch 1: 1.5 s, far longer than an epoch's 8 steps take.
        if (p.phase === 'eval' && p.epoch === 0 && !stalled) {
          stalled = true;
          const until = performance.now() + 1500;
          while (performance.now() < until);
        }
        if (p.phase === 'train' && p.epoch === 1) shown = p.imagesPerSecond;
      },
    });
    const second = result.history[1]!;
    const trained = (train.labels.length / second.trainSeconds);
    expect(stalled).toBe(true);
    expect(shown / trained, `shown ${shown.toFixed(0)} img/s, epoch 2 trained at ${trained.toFixed(0)}`).toBeGreaterThan(0.5);
  });

  it('a log cut short mid-line (a full disk, a kill) gets the next record on a line of its own', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 64 });
    const logFile = path.join(scratch, 'torn.jsonl');
    writeFileSync(logFile, '{"event":"epoch","epoch":3,"test_lo');
    await trainModel({ graph: smallCnn({ seed: 3, widths: [4, 8, 8] }), data: { train, test: train }, epochs: 1, batch: 32, threads: 2, log: logFile });
    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    expect(lines[0]).toBe('{"event":"epoch","epoch":3,"test_lo');
    for (const line of lines.slice(1)) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(lines.slice(1).map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['start', 'epoch', 'end']);
  });

  it('a record the file-size limit lets in only in part is cut off again: the log keeps whole records', () => {
    // ulimit -f 1 (1,024 bytes) lets the start record (~400 bytes) in only to byte 1,024 of a log that holds
    // 900: the kernel takes part of the write and refuses the rest (EFBIG), as a disk that fills up does.
    const logFile = path.join(scratch, 'limited.jsonl');
    const earlier = `${JSON.stringify({ event: 'end', note: 'x'.repeat(900 - 26) })}\n`;
    writeFileSync(logFile, earlier);
    expect(earlier.length).toBe(900);
    const slim = path.resolve(import.meta.dirname, '..', 'bin', 'slim.js');
    const args = ['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', DATA_DIR, '--epochs', '1', '--train-limit', '64', '--test-limit', '64', '--batch', '32', '--threads', '1', '--log', logFile, '--out', path.join(scratch, 'limited.onnx')];
    const run = spawnSync('bash', ['-c', 'ulimit -f 1; exec "$@"', 'bash', process.execPath, slim, ...args], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`slim: ${logFile}: cannot be written: it would pass the largest file this process may write (ulimit -f) or the file system holds — raise the limit`);
    expect(readFileSync(logFile, 'utf8')).toBe(earlier);
  });

  it('a checkpoint of an earlier slimkit (no weight hashes in its fingerprint) still resumes', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 128 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 64 });
    const dir = path.join(scratch, 'older-checkpoint');
    const base = { graph: smallCnn({ seed: 3, widths: [4, 8, 8] }), data: { train, test }, batch: 64, threads: 2, checkpointDir: dir, testLimit: 64, teacher: { graph: smallCnn({ seed: 7, widths: [4, 8, 8] }) } };
    await trainModel({ ...base, epochs: 1 });
    const file = path.join(dir, 'last.ckpt');
    const ckpt = await readCheckpoint<{ fingerprint: Record<string, unknown> }>(file);
    const { startWeights: _s, teacherWeights: _t, ...older } = ckpt.meta.fingerprint;
    await writeCheckpoint(file, { ...ckpt, meta: { ...ckpt.meta, fingerprint: older } });
    expect((await trainModel({ ...base, epochs: 2, resume: true }).catch((e: unknown) => e) as Error).message).toMatch(/--epochs: 1 then, 2 now\)/);
    expect((await trainModel({ ...base, epochs: 1, resume: true })).resumedFrom).toBe(1);
  });

  it('refuses an int8 (QDQ) model with what to do instead of a LibTorch error', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 64 });
    const float = foldBatchNorm(smallCnn({ seed: 3, widths: [4, 8, 8] }));
    const rng = new Random(1);
    const feeds = [{ input: float32([8, 3, 32, 32], Array.from({ length: 8 * 3 * 32 * 32 }, () => rng.normal())) }];
    const int8 = (await quantizeStatic(float, feeds, { ...DEFAULT_STATIC, biasCorrection: false })).graph;
    const error = await trainModel({ graph: int8, data: { train, test: train }, epochs: 1, batch: 32, threads: 2, file: 'q.onnx' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlimError);
    expect((error as Error).message).toBe('q.onnx: nothing in it can train: its weights are stored as int8 (a quantized model) — train or distill the float model and quantize after, or fine-tune in int8 with `slim quantize FLOAT.onnx --qat`');
  });

  it('refuses to resume a distillation with another teacher', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 128 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 64 });
    const dir = path.join(scratch, 'fingerprint-teacher');
    const base = { graph: smallCnn({ seed: 3, widths: [4, 8, 8] }), data: { train, test }, batch: 64, threads: 2, checkpointDir: dir, epochs: 2, testLimit: 64 };
    const teacher = (seed: number) => ({ graph: smallCnn({ seed, widths: [4, 8, 8] }), temperature: 4, alpha: 0.5 });
    await trainModel({ ...base, epochs: 1, teacher: teacher(7) });
    const other = await trainModel({ ...base, teacher: teacher(8), resume: true }).catch((e: unknown) => e);
    expect(String((other as Error).message)).toMatch(/other settings \(--epochs: 1 then, 2 now; the teacher's weights: others now\)/);
    expect((await trainModel({ ...base, epochs: 1, teacher: teacher(7), resume: true })).resumedFrom).toBe(1);
  });

  it('a distillation loss at its own chance level is not taken for divergence (T² scales it, T below 1 about T)', async () => {
    expect(chanceLoss(10)).toBeCloseTo(Math.log(10), 12);
    expect(chanceLoss(10, { temperature: 4, alpha: 0.5 })).toBeCloseTo(8.5 * Math.log(10), 12);
    // A sharpening temperature: T²·KL falls like T (KL grows like 1/T), so the bound must not fall like T².
    expect(chanceLoss(10, { temperature: 0.02, alpha: 0 })).toBeCloseTo(0.02 * Math.log(10), 12);
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 128 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 64 });
    // A sure teacher (head weights ×1000: one-hot even at T = 4) and a student that knows nothing: the
    // first loss is about 0.5·ln 10 + 0.5·16·ln 10 ≈ 20, above the plain-CE bound 5·ln 10 ≈ 11.5.
    const teacherGraph = smallCnn({ seed: 9, widths: [4, 8, 8] });
    for (const name of ['fc.weight', 'fc.bias']) {
      const t = teacherGraph.initializers.get(name) as Tensor<'float32'>;
      teacherGraph.initializers.set(name, float32(t.dims, Array.from(t.data, (v) => v * 1000)));
    }
    const result = await trainModel({
      graph: smallCnn({ seed: 3, widths: [4, 8, 8] }), data: { train, test }, batch: 64, threads: 2, epochs: 1, lr: 0.01, testLimit: 64,
      teacher: { graph: teacherGraph, temperature: 4, alpha: 0.5 },
    });
    expect(result.history[0]!.trainLoss).toBeGreaterThan(5 * Math.log(10));
  });

  it('stops a diverging run with a clear error and keeps the last good checkpoint', async () => {
    const train = await loadCifar10('train', { dataDir: DATA_DIR, limit: 512 });
    const test = await loadCifar10('test', { dataDir: DATA_DIR, limit: 256 });
    const dir = path.join(scratch, 'diverge');
    const base = { graph: smallCnn({ seed: 3, widths: [4, 8, 8] as [number, number, number] }), data: { train, test }, batch: 64, threads: 2, checkpointDir: dir, schedule: 'constant' as const };
    await trainModel({ ...base, epochs: 1, lr: 0.05 });
    const good = readFileSync(path.join(dir, 'last.ckpt'));
    const logFile = path.join(scratch, 'diverge.jsonl');
    const error = await trainModel({ ...base, epochs: 3, lr: 1e5, log: logFile }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlimError);
    expect(String((error as Error).message)).toMatch(/diverged|blown up/);
    expect(String((error as Error).message)).toMatch(/--lr/);
    // The log counts as the message does, from 1 (it said epoch 0, and a global step from 0).
    const said = /epoch (\d+), step (\d+)/.exec(String((error as Error).message));
    const diverged = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>).find((r) => r['event'] === 'diverged');
    expect(said).not.toBeNull();
    expect(diverged).toBeDefined();
    if (said && diverged) {
      expect([diverged['epoch'], diverged['step']]).toEqual([Number(said[1]), Number(said[2])]);
      expect(diverged['global_step']).toBe((Number(said[1]) - 1) * 8 + Number(said[2]));
    }
    expect(readFileSync(path.join(dir, 'last.ckpt')).equals(good)).toBe(true);
  });
});
