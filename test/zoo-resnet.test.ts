import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { buildZooModel, countParameters, describeZoo, IMAGENET_NORMALIZATION, METADATA_KEYS, readPreprocessing, ZOO, type ZooName } from '../src/zoo/index.js';
import { preprocessingMetadata } from '../src/zoo/metadata.js';
import { closest, editDistance } from '../src/util/suggest.js';
import { resnetParameterCount } from '../src/zoo/resnet.js';

/**
 * Parameter convention (see src/zoo/params.ts): every float initializer element — conv and linear
 * weights and biases, BN γ and β — and not BN running mean/var, exactly like PyTorch's
 * sum(p.numel() for p in model.parameters()). The expected numbers are torchvision's well-known
 * counts (resnet18 11,689,512; resnet50 25,557,032) and the CIFAR variants of the same nets.
 */
const TORCHVISION_COUNTS: [ZooName, number, number][] = [
  ['resnet18-cifar', 10, 11_173_962],
  ['resnet34-cifar', 10, 21_282_122],
  ['resnet50-cifar', 10, 23_520_842],
  ['resnet18-imagenet', 1000, 11_689_512],
  ['resnet50-imagenet', 1000, 25_557_032],
];

const ZOO_NAMES = Object.keys(ZOO) as ZooName[];

function floats(t: Tensor): Float32Array {
  return t.data as Float32Array;
}

function weight(g: Graph, name: string): Float32Array {
  const t = g.initializers.get(name);
  if (!t) throw new Error(`no initializer ${name}`);
  return floats(t);
}

function randomInput(rng: Random, dims: number[]): Tensor<'float32'> {
  const t = makeTensor('float32', dims);
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
  return t;
}

function inputDims(g: Graph, batch: number): number[] {
  const shape = g.inputs[0]!.shape!;
  return [batch, ...(shape.slice(1) as number[])];
}

describe('zoo parameter counts', () => {
  it.each(TORCHVISION_COUNTS)('%s with %i classes has %i parameters', (name, classes, expected) => {
    const g = buildZooModel(name, { classes });
    expect(countParameters(g)).toBe(expected);
    // describeZoo counts without allocating weights; it must agree with the built graph.
    expect(describeZoo().find((d) => d.name === name)!.params).toBe(expected);
  });

  it('describeZoo lists every model with its input size and default classes', () => {
    const rows = describeZoo();
    expect(rows.map((r) => r.name)).toEqual(ZOO_NAMES);
    const r34 = rows.find((r) => r.name === 'resnet34-imagenet')!;
    expect(r34).toMatchObject({ inputShape: [3, 224, 224], inputSize: 224, classes: 1000, params: 21_797_672 });
    expect(rows.find((r) => r.name === 'resnet18-cifar')!.inputShape).toEqual([3, 32, 32]);
  });
});

describe('zoo graphs: shape inference and ONNX Runtime', () => {
  const cases: [ZooName, number][] = [...ZOO_NAMES.map((n): [ZooName, number] => [n, 0.25]), ['resnet18-cifar', 1]];

  it.each(cases)('%s at width %f infers [batch, classes] and runs in ORT', async (name, width) => {
    const classes = name.endsWith('imagenet') ? 7 : 10;
    const g = buildZooModel(name, { width, classes, seed: 3 });
    expect(g.opsets['']).toBe(17);
    expect(g.irVersion).toBe(8);
    expect(g.inputs.map((v) => v.name)).toEqual(['input']);
    expect(g.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['batch', classes] }]);

    const facts = inferShapes(g);
    expect(facts.types.get('logits')).toEqual({ dtype: 'float32', shape: ['batch', classes] });

    const out = await runGraph(g, { input: randomInput(new Random(1), inputDims(g, 2)) }, { threads: 2 });
    const logits = out.logits!;
    expect(logits.dims).toEqual([2, classes]);
    expect(floats(logits).every(Number.isFinite)).toBe(true);
    // Random weights still give distinct logits per class (not a constant or collapsed output).
    expect(new Set(floats(logits)).size).toBe(2 * classes);
  });

  it('builds for another image size (global pooling takes any): the input, the recorded size and ORT agree', async () => {
    const g = buildZooModel('resnet18-cifar', { width: 0.125, seed: 3, imageSize: [40, 56] });
    expect(g.inputs[0]!.shape).toEqual(['batch', 3, 40, 56]);
    expect(readPreprocessing(g).inputShape).toEqual([3, 40, 56]);
    // Same weights as the default build: only the input shape differs.
    const square = buildZooModel('resnet18-cifar', { width: 0.125, seed: 3 });
    expect([...g.initializers.keys()]).toEqual([...square.initializers.keys()]);
    const out = await runGraph(g, { input: randomInput(new Random(1), [2, 3, 40, 56]) }, { threads: 2 });
    expect(out.logits!.dims).toEqual([2, 10]);
    // MACs follow the pixels: 40×56 has 2.1875× the pixels of 32×32.
    expect(inferShapes(g).totalMacs / inferShapes(square).totalMacs).toBeCloseTo((40 * 56) / (32 * 32), 1);
  });
});

describe('zoo weight init', () => {
  const g = buildZooModel('resnet18-cifar', { seed: 7 });

  it('conv weights follow kaiming_normal_(mode=fan_out, nonlinearity=relu)', () => {
    // layer4.1.conv2: [512, 512, 3, 3], 2.36 M samples; fan_out = 512·9.
    const w = weight(g, 'layer4.1.conv2.weight');
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
    const expected = Math.sqrt(2 / (512 * 9));
    expect(Math.abs(std - expected) / expected).toBeLessThan(0.05);
    expect(Math.abs(mean)).toBeLessThan(0.01 * expected);
    // A different fan_out gives a different std: the stem conv has 64·9.
    const stem = weight(g, 'conv1.weight');
    const stemStd = Math.sqrt(stem.reduce((s, v) => s + v * v, 0) / stem.length);
    expect(Math.abs(stemStd - Math.sqrt(2 / (64 * 9))) / Math.sqrt(2 / (64 * 9))).toBeLessThan(0.05);
  });

  it('linear head uses PyTorch defaults: U(±1/√fan_in) for weight and bias', () => {
    const bound = 1 / Math.sqrt(512);
    for (const name of ['fc.weight', 'fc.bias']) {
      const w = weight(g, name);
      const max = Math.max(...w.map(Math.abs));
      expect(max).toBeLessThanOrEqual(bound);
      expect(max).toBeGreaterThan(0.9 * bound);
    }
    expect(g.initializers.get('fc.weight')!.dims).toEqual([10, 512]);
  });

  it('BN starts at γ=1, β=0, mean 0, var 1; zeroInitResidual zeroes the last γ of each block', () => {
    expect([...weight(g, 'layer1.0.bn2.weight')].every((v) => v === 1)).toBe(true);
    expect([...weight(g, 'layer1.0.bn2.bias')].every((v) => v === 0)).toBe(true);
    expect([...weight(g, 'layer1.0.bn2.running_mean')].every((v) => v === 0)).toBe(true);
    expect([...weight(g, 'layer1.0.bn2.running_var')].every((v) => v === 1)).toBe(true);
    const bn = g.nodes.find((n) => n.name === 'layer1.0.bn2')!;
    expect(bn.attributes.epsilon).toEqual({ type: 'float', value: 1e-5 });
    expect(bn.attributes.momentum).toEqual({ type: 'float', value: 0.9 });

    const z = buildZooModel('resnet50-cifar', { width: 0.25, zeroInitResidual: true });
    expect([...weight(z, 'layer2.3.bn3.weight')].every((v) => v === 0)).toBe(true);
    expect([...weight(z, 'layer2.3.bn2.weight')].every((v) => v === 1)).toBe(true);
    expect([...weight(z, 'layer2.0.downsample.1.weight')].every((v) => v === 1)).toBe(true);
    const z18 = buildZooModel('resnet18-cifar', { width: 0.25, zeroInitResidual: true });
    expect([...weight(z18, 'layer4.1.bn2.weight')].every((v) => v === 0)).toBe(true);
    expect([...weight(z18, 'layer4.1.bn1.weight')].every((v) => v === 1)).toBe(true);
  });

  it('the same seed gives identical bytes, a different seed different weights', () => {
    const a = buildZooModel('resnet18-cifar', { width: 0.25, seed: 11 });
    const b = buildZooModel('resnet18-cifar', { width: 0.25, seed: 11 });
    const c = buildZooModel('resnet18-cifar', { width: 0.25, seed: 12 });
    expect(Buffer.from(encodeModel(a).model).equals(Buffer.from(encodeModel(b).model))).toBe(true);
    const differing = [...a.initializers.keys()].filter(
      (k) => !Buffer.from(floats(a.initializers.get(k)!).buffer).equals(Buffer.from(floats(c.initializers.get(k)!).buffer)),
    );
    // Every randomly initialized tensor changes (convs, fc); the BN constants do not.
    expect(differing.sort()).toEqual([...a.initializers.keys()].filter((k) => /conv|downsample\.0|fc\./.test(k)).sort());
  });
});

describe('zoo names, options and metadata', () => {
  it('names nodes and weights like torchvision modules', () => {
    const g = buildZooModel('resnet18-imagenet', { width: 0.25 });
    const nodes = g.nodes.map((n) => n.name);
    expect(nodes.slice(0, 4)).toEqual(['conv1', 'bn1', 'relu', 'maxpool']);
    expect(nodes).toContain('layer2.0.downsample.0');
    expect(nodes.slice(-3)).toEqual(['avgpool', 'flatten', 'fc']);
    expect(new Set(nodes).size).toBe(nodes.length);
    expect(g.nodes.filter((n) => n.opType === 'Conv').every((n) => n.inputs.length === 2)).toBe(true);
    expect(g.nodes.find((n) => n.name === 'fc')!.attributes.transB).toEqual({ type: 'int', value: 1 });
    // ResNet-18 has downsample shortcuts only where the stage starts with stride 2.
    expect(nodes.filter((n) => n.endsWith('downsample.0'))).toEqual(['layer2.0.downsample.0', 'layer3.0.downsample.0', 'layer4.0.downsample.0']);
    // ResNet-50's first block changes channels 64 → 256 at stride 1 and needs one too.
    expect(buildZooModel('resnet50-cifar', { width: 0.25 }).initializers.get('layer1.0.downsample.0.weight')!.dims).toEqual([64, 16, 1, 1]);
  });

  it('width scales every stage: channels = max(1, round(64·2^i·width))', () => {
    const g = buildZooModel('resnet18-cifar', { width: 0.3 });
    expect(g.initializers.get('conv1.weight')!.dims).toEqual([19, 3, 3, 3]);
    expect(g.initializers.get('layer2.0.conv1.weight')!.dims).toEqual([38, 19, 3, 3]);
    expect(g.initializers.get('layer3.0.conv1.weight')!.dims).toEqual([77, 38, 3, 3]);
    expect(g.initializers.get('fc.weight')!.dims).toEqual([10, 154]);
    expect(buildZooModel('resnet18-cifar', { width: 0.001 }).initializers.get('conv1.weight')!.dims).toEqual([1, 3, 3, 3]);
  });

  it('records preprocessing and build options in metadata', () => {
    const g = buildZooModel('resnet34-cifar', { width: 0.25, seed: 5, classNames: ['a', 'b', 'c'] });
    expect(readPreprocessing(g)).toEqual({
      inputShape: [3, 32, 32],
      normalization: { scale: 1 / 255, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
      classNames: ['a', 'b', 'c'],
    });
    expect(JSON.parse(g.metadata[METADATA_KEYS.zoo]!)).toEqual({ name: 'resnet34-cifar', classes: 3, width: 0.25, seed: 5, zero_init_residual: false });
    const im = buildZooModel('resnet18-imagenet', { width: 0.25 });
    expect(readPreprocessing(im)).toEqual({
      inputShape: [3, 224, 224],
      normalization: { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    });
    expect(im.outputs[0]!.shape).toEqual(['batch', 1000]);
    expect(() => readPreprocessing({ ...im, metadata: { [METADATA_KEYS.inputSize]: '[3,32]' } }, 'm.onnx')).toThrow(
      /m\.onnx: metadata 'slimkit\.input_size'/,
    );
    // slimkit.resize: a mode name, or the shorter side's size before the centre crop.
    const resized = (value: string) => readPreprocessing({ ...im, metadata: { [METADATA_KEYS.resize]: value } }, 'm.onnx').resize;
    expect(resized('256')).toEqual({ shorterSide: 256 });
    expect(resized('"stretch"')).toBe('stretch');
    expect(resized('"shorter-side"')).toBe('shorter-side');
    for (const bad of ['"crop"', '0', '25.5', 'stretch']) {
      expect(() => resized(bad)).toThrow(/m\.onnx: metadata 'slimkit\.resize'[\s\S]*"shorter-side", "stretch" or the shorter side's size/);
    }
    expect(preprocessingMetadata({ inputShape: [3, 224, 224], normalization: IMAGENET_NORMALIZATION, resize: { shorterSide: 256 } })[METADATA_KEYS.resize]).toBe('256');
  });

  function usageFailure(fn: () => unknown): SlimError {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(SlimError);
      expect((e as SlimError).exitCode).toBe(2);
      return e as SlimError;
    }
    throw new Error('expected a usage error');
  }

  it('rejects unknown names with a suggestion and bad options as usage errors', () => {
    const e = usageFailure(() => buildZooModel('resnet18-cifr'));
    expect(e.message).toContain("unknown zoo model 'resnet18-cifr'");
    expect(e.message).toContain("did you mean 'resnet18-cifar'?");
    expect(e.message).toContain('resnet50-imagenet');
    expect(usageFailure(() => buildZooModel('vgg16')).message).not.toContain('did you mean');
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { width: 0 })).parts.where).toBe('width');
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { width: -1 })).parts.where).toBe('width');
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { width: Number.NaN })).parts.where).toBe('width');
    // Refused before any weight is allocated (width 100 would need 416 GiB), with the widest that fits.
    const huge = usageFailure(() => buildZooModel('resnet18-cifar', { width: 100 }));
    expect(huge.parts.where).toBe('width');
    expect(huge.message).toMatch(/111\.58 G parameters \(415\.66 GiB of float32\), more than an ONNX file can hold \(2 GiB\) — use a width ≤ 6\.9$/);
    const classes = usageFailure(() => buildZooModel('resnet18-cifar', { classes: 100_000_000 }));
    expect([classes.parts.where, classes.parts.fix]).toEqual(['classes', 'use fewer classes']);
    // 4 bytes per parameter as the model is stored, counted the way the bound is computed.
    expect(4 * resnetParameterCount({ depth: 18, stem: 'cifar', classes: 10, width: 6.9, zeroInitResidual: false })).toBeLessThan(2 ** 31);
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { classes: 1 })).parts.where).toBe('classes');
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { classes: 2.5 })).parts.where).toBe('classes');
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { seed: -1 })).parts.where).toBe('seed');
    expect(usageFailure(() => buildZooModel('resnet18-cifar', { classes: 3, classNames: ['a'] })).message).toContain('1 class names given for 3 classes');
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('did-you-mean: close in letters for long words, by meaning for names from elsewhere, nothing for short guesses', () => {
    expect(closest('resnet18cifar', ['resnet18-cifar', 'resnet34-cifar'])).toBe('resnet18-cifar');
    expect(closest('epoch', ['epochs', 'batch'])).toBe('epochs');
    expect(closest('prnue', ['train', 'prune', 'quantize'])).toBe('prune');
    // 'gpu' is one letter from 'cpu' and means the other one.
    expect(closest('gpu', ['cpu', 'cuda'])).toBe('cuda');
    expect(closest('linux-amd64', ['linux-arm64', 'linux-x64', 'web'])).toBe('linux-x64');
    expect(closest('fp8', ['auto', 'fp32', 'bf16', 'fp16'])).toBeUndefined();
  });
});

// ---- PyTorch oracle ------------------------------------------------------------------------------

const PYTHON = '/usr/bin/python3';
const ORACLE = fileURLToPath(new URL('./helpers/torch-resnet.py', import.meta.url));
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn(`zoo-resnet: skipping the PyTorch oracle: ${PYTHON} cannot import torch (apt install python3-torch)`);

/** Non-default BN parameters and statistics, so that the comparison really exercises BatchNormalization. */
function randomizeBatchNorm(g: Graph, rng: Random): Graph {
  const initializers = new Map(g.initializers);
  for (const node of g.nodes.filter((n) => n.opType === 'BatchNormalization')) {
    const [, scale, bias, mean, variance] = node.inputs as [string, string, string, string, string];
    const ranges: [string, number, number][] = [[scale, 0.5, 1.2], [bias, -0.3, 0.3], [mean, -0.3, 0.3], [variance, 0.4, 1.6]];
    for (const [name, lo, hi] of ranges) {
      const t = makeTensor('float32', g.initializers.get(name)!.dims);
      for (let i = 0; i < t.data.length; i++) t.data[i] = rng.uniform(lo, hi);
      initializers.set(name, t);
    }
  }
  return { ...g, initializers };
}

function torchLogits(g: Graph, arch: { depth: number; stem: string; width: number; classes: number }, input: Tensor<'float32'>): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'slimkit-zoo-'));
  try {
    const entries = [...g.initializers];
    writeFileSync(join(dir, 'case.json'), JSON.stringify({ ...arch, weights: entries.map(([k, t]) => [k, t.dims]), input: input.dims }));
    writeFileSync(join(dir, 'weights.bin'), Buffer.concat(entries.map(([, t]) => Buffer.from(floats(t).buffer, floats(t).byteOffset, floats(t).byteLength))));
    writeFileSync(join(dir, 'input.bin'), input.data);
    const r = spawnSync(PYTHON, [ORACLE, dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`torch-resnet.py failed: ${r.stderr}`);
    const bytes = readFileSync(join(dir, 'logits.bin'));
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!hasTorch)('zoo vs PyTorch (same architecture, our weights)', () => {
  const cases: [ZooName, { depth: number; stem: string }, number][] = [
    ['resnet18-cifar', { depth: 18, stem: 'cifar' }, 10],
    ['resnet18-imagenet', { depth: 18, stem: 'imagenet' }, 5],
    ['resnet50-cifar', { depth: 50, stem: 'cifar' }, 10],
  ];

  it.each(cases)('%s at width 0.25 gives PyTorch logits within 1e-4', async (name, arch, classes) => {
    const g = randomizeBatchNorm(buildZooModel(name, { width: 0.25, classes, seed: 2 }), new Random(9));
    const input = randomInput(new Random(4), inputDims(g, 2));
    const ours = floats((await runGraph(g, { input }, { threads: 2 })).logits!);
    const theirs = torchLogits(g, { ...arch, width: 0.25, classes }, input);
    expect(theirs.length).toBe(2 * classes);
    // Logits are O(1–30) here (measured max diff 5e-7 … 1.1e-5): big enough that a wrong BN epsilon,
    // stride or padding shows, small enough that float32 summation order does not.
    const maxDiff = Math.max(...ours.map((v, i) => Math.abs(v - theirs[i]!)));
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
    // The logits are not trivially equal (e.g. all zero): they vary across classes and images.
    expect(new Set(theirs).size).toBe(2 * classes);
    expect(Math.max(...theirs.map(Math.abs))).toBeGreaterThan(0.5);
  }, 60_000);
});
