/**
 * QDQ placement on zoo models and PyTorch exports: which tensors get Q/DQ and with what types, the
 * folded activations, pass-through scales, bias scales, idempotence, the options — and, with ONNX
 * Runtime as the oracle, that ORT fuses the result into integer kernels with no float compute left.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { emptyGraph, GraphIndex, type Graph, type Node } from '../src/onnx/graph.js';
import { decodeModel, encodeModel, readModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { validateGraph } from '../src/onnx/validate.js';
import { buildZooModel } from '../src/zoo/index.js';
import { Random } from '../src/util/random.js';
import {
  calibrationTargets,
  computeParams,
  DEFAULT_STATIC,
  insertQdq,
  INT8_SYMMETRIC,
  nodeLabel,
  ortKernels,
  planQuantization,
  quantizedBySensitivity,
  prepareFloatGraph,
  quantizeStatic,
  type StaticOptions,
  type TensorRange,
} from '../src/compress/quantize/index.js';
import { fixturePath } from './helpers/fixtures.js';
import { linuxX64CpuFlags } from '../src/util/cpu-flags.js';
import { convAppliedTwiceNet } from './prune-fixtures.js';

/** Plan + parameters + insertion with made-up ranges (placement does not depend on the values). */
function quantizeWithRanges(graph: Graph, options: Partial<StaticOptions> = {}) {
  const opts = { ...DEFAULT_STATIC, ...options };
  const prepared = prepareFloatGraph(graph, opts);
  const plan = planQuantization(prepared.graph, prepared.facts, opts);
  const ranges = new Map<string, TensorRange>(calibrationTargets(plan).map((t) => [t, { min: -1, max: 2 }]));
  const params = computeParams(prepared.graph, plan, ranges, opts);
  return { prepared, plan, params, graph: insertQdq(prepared.graph, plan, params) };
}

const count = (g: Graph, op: string): number => g.nodes.filter((n) => n.opType === op).length;

function producerOf(g: Graph, value: string): Node | undefined {
  return new GraphIndex(g).producer.get(value);
}

/** The DequantizeLinear feeding input `slot` of `node`, and its three inputs' tensors. */
function dqInput(g: Graph, node: Node, slot: number): { dq: Node; x: Tensor | undefined; scale: Tensor; zero: Tensor | undefined } {
  const dq = producerOf(g, node.inputs[slot]!);
  expect(dq?.opType, `${node.name} input ${slot}`).toBe('DequantizeLinear');
  return { dq: dq!, x: g.initializers.get(dq!.inputs[0]!), scale: g.initializers.get(dq!.inputs[1]!)!, zero: g.initializers.get(dq!.inputs[2]!) };
}

describe('QDQ placement on the zoo ResNet18-CIFAR', () => {
  const float = buildZooModel('resnet18-cifar', { width: 0.25 });
  const { graph: q, plan } = quantizeWithRanges(float);

  it('quantizes every Conv, Add, pool and the Gemm, and folds every ReLU into its producer', () => {
    expect(count(q, 'BatchNormalization')).toBe(0);
    expect(count(q, 'Relu')).toBe(0);
    expect(plan.folded.size).toBe(17);
    expect(plan.layers).toHaveLength(21); // 20 Conv + the Gemm
    expect(plan.float).toEqual([]);
    validateGraph(q);
  });

  it('gives every Conv a uint8 input, int8 per-channel weights and an int32 bias at s_x · s_w', () => {
    for (const conv of q.nodes.filter((n) => n.opType === 'Conv')) {
      const x = dqInput(q, conv, 0);
      expect(x.zero?.dtype).toBe('uint8');
      expect(x.scale.dims).toEqual([]);
      const w = dqInput(q, conv, 1);
      expect(w.x?.dtype).toBe('int8');
      const channels = w.x!.dims[0]!;
      expect(w.scale.dims).toEqual([channels]);
      expect(w.dq.attributes['axis']).toEqual({ type: 'int', value: 0 });
      expect(Array.from(w.zero!.data as Int8Array).every((z) => z === 0)).toBe(true);
      const b = dqInput(q, conv, 2);
      expect(b.x?.dtype).toBe('int32');
      const sx = (x.scale.data as Float32Array)[0]!;
      const sw = w.scale.data as Float32Array;
      const sb = b.scale.data as Float32Array;
      for (let c = 0; c < channels; c++) expect(sb[c]).toBe(Math.fround(sx * sw[c]!));
      // The Conv's output goes straight into one QuantizeLinear (what ORT's QLinearConv fusion needs).
      const readers = new GraphIndex(q).consumersOf(conv.outputs[0]!);
      expect(readers.map((n) => n.opType)).toEqual(['QuantizeLinear']);
    }
  });

  it('quantizes both Add inputs, shares the pooled scale through Flatten and leaves the logits float', () => {
    for (const add of q.nodes.filter((n) => n.opType === 'Add')) {
      dqInput(q, add, 0);
      dqInput(q, add, 1);
    }
    const index = new GraphIndex(q);
    const gap = q.nodes.find((n) => n.opType === 'GlobalAveragePool')!;
    const gapQ = index.consumersOf(gap.outputs[0]!)[0]!;
    const flatten = q.nodes.find((n) => n.opType === 'Flatten')!;
    const flatQ = index.consumersOf(flatten.outputs[0]!)[0]!;
    expect([gapQ.opType, flatQ.opType]).toEqual(['QuantizeLinear', 'QuantizeLinear']);
    expect(flatQ.inputs.slice(1)).toEqual(gapQ.inputs.slice(1));
    expect(q.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(producerOf(q, 'logits')?.opType).toBe('Gemm');
    expect(index.consumersOf('logits')).toEqual([]);
  });

  it('is idempotent: a second pass finds every node already quantized', () => {
    const facts = inferShapes(q);
    const again = planQuantization(q, facts, DEFAULT_STATIC);
    expect(again.units.size).toBe(0);
    expect(again.tensors.size).toBe(0);
    const twice = insertQdq(q, again, { tensors: new Map(), warnings: [] });
    expect(twice.nodes.map((n) => n.name)).toEqual(q.nodes.map((n) => n.name));
    expect([...twice.initializers.keys()]).toEqual([...q.initializers.keys()]);
  });
});

describe('QDQ placement on other graphs', () => {
  it('gives MaxPool (ImageNet stem) the scale of its input, so ORT runs it on int8', () => {
    const { graph: q } = quantizeWithRanges(buildZooModel('resnet50-imagenet', { width: 0.125 }));
    const pool = q.nodes.find((n) => n.opType === 'MaxPool')!;
    const inDq = producerOf(q, pool.inputs[0]!)!;
    const outQ = new GraphIndex(q).consumersOf(pool.outputs[0]!)[0]!;
    expect(outQ.opType).toBe('QuantizeLinear');
    expect(outQ.inputs.slice(1)).toEqual(inDq.inputs.slice(1));
    expect(count(q, 'Relu')).toBe(0);
    expect(count(q, 'Conv')).toBe(53);
  });

  it('handles the PyTorch MobileNet-style export: ReLU6 folded, integer-kernel ops quantized, the rest float', () => {
    const { graph: q, plan } = quantizeWithRanges(decodeModel(readFileSync(fixturePath('torch-tiny-mobilenet.onnx'))));
    validateGraph(q);
    const kept = q.nodes.map((n) => n.opType);
    expect(kept).not.toContain('Clip'); // ReLU6 after the depthwise Conv: its range clamps instead
    // Its min and max went with it: ONNX Runtime warns at every load about an initializer no node reads.
    const read = new Set(q.nodes.flatMap((n) => n.inputs));
    expect([...q.initializers.keys()].filter((name) => !read.has(name))).toEqual([]);
    expect(kept).not.toContain('Relu'); // the squeeze-excite ReLU folds into its Conv too
    expect(plan.folded.size).toBe(2);
    for (const op of ['HardSwish', 'HardSigmoid', 'Softmax']) expect(kept, op).toContain(op); // no integer kernel
    // torch.onnx writes avg_pool2d as a Pad of zeros → AveragePool: the Pad is removed, not left float.
    expect(kept).not.toContain('Pad');
    expect(plan.float.map((f) => f.opType).sort()).toEqual(['HardSigmoid', 'HardSwish', 'Softmax']);
    expect(plan.float[0]!.reason).toMatch(/no integer kernel/);
    for (const op of ['Conv', 'Mul', 'Concat', 'LeakyRelu', 'Sigmoid', 'AveragePool', 'GlobalAveragePool', 'Gemm']) {
      const node = q.nodes.find((n) => n.opType === op)!;
      expect(producerOf(q, node.inputs[0]!)?.opType, op).toBe('DequantizeLinear');
    }
    // The Softmax output is the model's output: float. Its input is quantized (the Gemm's output).
    const softmax = q.nodes.find((n) => n.opType === 'Softmax')!;
    expect(softmax.outputs).toEqual(['logits']);
    expect(producerOf(q, softmax.inputs[0]!)?.opType).toBe('DequantizeLinear');
  });

  it('places QDQ on the PyTorch ResNet exports (BN folded by slimkit or by the exporter)', () => {
    for (const file of ['torch-tiny-resnet.onnx', 'torch-tiny-resnet-folded.onnx']) {
      const { graph: q, plan } = quantizeWithRanges(decodeModel(readFileSync(fixturePath(file))));
      expect(count(q, 'Relu'), file).toBe(0);
      expect(plan.folded.size, file).toBe(4);
      expect(count(q, 'QuantizeLinear'), file).toBeGreaterThan(8);
      const pool = q.nodes.find((n) => n.opType === 'MaxPool')!;
      expect(producerOf(q, pool.inputs[0]!)?.opType, file).toBe('DequantizeLinear');
      validateGraph(q);
    }
  });
});

describe('options', () => {
  const float = buildZooModel('resnet18-cifar', { width: 0.125 });

  it('--per-tensor: one weight scale per tensor', () => {
    const { graph: q } = quantizeWithRanges(float, { perChannel: false });
    const conv = q.nodes.find((n) => n.opType === 'Conv')!;
    const w = dqInput(q, conv, 1);
    expect(w.scale.dims).toEqual([]);
    expect(w.dq.attributes['axis']).toBeUndefined();
  });

  it('int8 symmetric activations: zero point 0, and ReLUs stay (a mid-range zero point cannot clamp)', () => {
    const { graph: q, plan } = quantizeWithRanges(float, { activations: INT8_SYMMETRIC });
    expect(plan.folded.size).toBe(0);
    expect(count(q, 'Relu')).toBe(17);
    const x = dqInput(q, q.nodes.find((n) => n.opType === 'Conv')!, 0);
    expect(x.zero?.dtype).toBe('int8');
    expect((x.zero!.data as Int8Array)[0]).toBe(0);
  });

  it('--reduce-range: 7-bit weights', () => {
    const { graph: q } = quantizeWithRanges(float, { reduceRange: true });
    for (const conv of q.nodes.filter((n) => n.opType === 'Conv')) {
      const w = dqInput(q, conv, 1).x!.data as Int8Array;
      expect(Math.max(...Array.from(w, Math.abs))).toBe(64);
    }
  });

  it('--keep-first / --keep-last / --exclude keep those layers float and say why', () => {
    const { graph: q, plan } = quantizeWithRanges(float, { keepFirst: true, keepLast: true, exclude: ['layer2.0.add'] });
    const first = q.nodes.find((n) => n.name === 'conv1')!;
    expect(q.initializers.get(first.inputs[1]!)?.dtype).toBe('float32');
    const fc = q.nodes.find((n) => n.opType === 'Gemm')!;
    expect(q.initializers.get(fc.inputs[1]!)?.dtype).toBe('float32');
    expect(plan.float.map((f) => [f.node, f.reason])).toEqual([
      ['layer2.0.add', 'excluded'],
      ['conv1', 'first layer kept float'],
      ['fc', 'last layer kept float'],
    ]);
    // conv1 is float, so its ReLU stays: nothing absorbs it.
    expect(count(q, 'Relu')).toBe(2);
    expect(() => quantizeWithRanges(float, { exclude: ['no-such-node'] })).toThrow(/--exclude names 'no-such-node'/);
  });

  it('--max-drop: its float layers are named for it, and it picks among the layers the plan quantizes only', () => {
    const opts = { ...DEFAULT_STATIC, exclude: ['layer1.0.conv1'] };
    const prepared = prepareFloatGraph(float, opts);
    const userPlan = planQuantization(prepared.graph, prepared.facts, opts);
    // The excluded conv's reader is kept float with it: neither is a candidate (ranked, a step that changed nothing).
    expect(userPlan.float.map((f) => f.node)).toEqual(expect.arrayContaining(['layer1.0.conv1', 'layer1.0.conv2']));
    const scanned = ['layer1.0.conv2', 'layer1.0.conv1', 'layer2.0.conv1', 'fc'].map((layer, k) => ({ layer, opType: 'Conv', score: 10 + k, agreement: 0.5 }));
    expect(quantizedBySensitivity(scanned, userPlan)).toEqual(['layer2.0.conv1', 'fc']);
    // Named as --max-drop's choice ("excluded" before, with no --exclude given).
    const mixed = planQuantization(prepared.graph, prepared.facts, { ...opts, keptBySensitivity: ['layer2.0.conv1'] });
    expect(mixed.float.find((f) => f.node === 'layer2.0.conv1')?.reason).toBe('kept float by --max-drop: among the layers int8 costs the most top-1');
    expect(mixed.float.find((f) => f.node === 'layer1.0.conv1')?.reason).toBe('excluded');
  });

  it('refuses opsets without per-axis QuantizeLinear, naming the way out', () => {
    const old = { ...float, opsets: { '': 12 } };
    expect(() => planQuantization(old, inferShapes(old), DEFAULT_STATIC)).toThrow(SlimError);
    expect(() => planQuantization(old, inferShapes(old), DEFAULT_STATIC)).toThrow(/--per-tensor/);
    expect(planQuantization(old, inferShapes(old), { ...DEFAULT_STATIC, perChannel: false }).units.size).toBeGreaterThan(0);
  });

  it('widens a weight scale when the bias would not fit int32, instead of saturating', () => {
    const g = emptyGraph('tiny-weights', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 1, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 2, 1, 1] }];
    g.initializers.set('w', float32([2, 1, 1, 1], [1e-9, 0.5]));
    g.initializers.set('b', float32([2], [1000, 1]));
    g.nodes = [
      { name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: {} },
      { name: 'relu', opType: 'Relu', domain: '', inputs: ['c'], outputs: ['r'], attributes: {} },
      { name: 'gap', opType: 'GlobalAveragePool', domain: '', inputs: ['r'], outputs: ['y'], attributes: {} },
    ];
    const { params } = quantizeWithRanges(g);
    expect(params.warnings.join()).toMatch(/bias 'b'.*did not fit int32/);
    const bias = params.tensors.get('b');
    expect(bias?.kind).toBe('bias');
    if (bias?.kind !== 'bias') return;
    expect(Math.max(...Array.from(bias.values, Math.abs))).toBeLessThan(2 ** 31);
    expect(bias.values[0]! * bias.scales[0]!).toBeCloseTo(1000, 0);
  });
});

describe('ONNX Runtime fuses the QDQ graph into integer kernels', () => {
  const optimizedOps = async (g: Graph): Promise<Record<string, number>> => (await ortKernels(encodeModel(g).model)).ops;

  it('ResNet18-CIFAR: QLinearConv / QLinearAdd / QLinearGlobalAveragePool / QGemm, no float Conv, Add or Gemm', async () => {
    const rng = new Random(1);
    const feeds = [0, 1].map(() => ({ input: float32([8, 3, 32, 32], Array.from({ length: 8 * 3072 }, () => rng.normal())) }));
    const { graph: q } = await quantizeStatic(buildZooModel('resnet18-cifar', { width: 0.25 }), feeds, DEFAULT_STATIC, { threads: 1 });
    const ops = await optimizedOps(q);
    expect(ops).toMatchObject({ QLinearConv: 20, QLinearAdd: 8, QLinearGlobalAveragePool: 1, QGemm: 1, QuantizeLinear: 1 });
    for (const float of ['Conv', 'Add', 'Gemm', 'Relu', 'GlobalAveragePool', 'DequantizeLinear', 'FusedConv']) expect(ops[float], float).toBeUndefined();
  });

  it("counts the float Adds ORT folds into the Conv before them: every residual Add is either an op of its own or a Conv's fused sum", async () => {
    // Float ResNet18: 8 residual Adds. On x64, ORT's NCHWc Convs take each as a 4th (sum) input, leaving no Add op.
    const kernels = await ortKernels(encodeModel(buildZooModel('resnet18-cifar', { width: 0.25 })).model);
    expect((kernels.ops['Add'] ?? 0) + kernels.addsInConvs).toBe(8);
    // NCHWc kernels need AVX2 (MLAS's block size is 1 below it).
    if (linuxX64CpuFlags().includes('avx2')) expect(kernels.addsInConvs).toBe(8);
  });

  it('tells float ops between int8 ones (each converts back and forth) from input preprocessing before the first QuantizeLinear and a float tail after the last', async () => {
    const g = emptyGraph('islands', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 3, 8, 8] }];
    g.outputs = [{ name: 'p', dtype: 'float32', shape: ['N', 4] }];
    const rng = new Random(3);
    const weights = (dims: number[]): Tensor => float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal() * 0.3));
    g.initializers.set('two', float32([], [2]));
    g.initializers.set('w1', weights([4, 3, 3, 3]));
    g.initializers.set('w2', weights([4, 4, 3, 3]));
    g.initializers.set('fc', weights([4, 4]));
    const node = (opType: string, inputs: string[], output: string, attributes: Graph['nodes'][number]['attributes'] = {}): Graph['nodes'][number] => ({ name: output, opType, domain: '', inputs, outputs: [output], attributes });
    g.nodes = [
      node('Div', ['x', 'two'], 'halved'), // preprocessing: before anything is quantized
      node('Conv', ['halved', 'w1'], 'c1', { pads: { type: 'ints', value: [1, 1, 1, 1] } }),
      node('Relu', ['c1'], 'r1'),
      node('Tanh', ['r1'], 't'), // between two int8 Convs
      node('Conv', ['t', 'w2'], 'c2', { pads: { type: 'ints', value: [1, 1, 1, 1] } }),
      node('Relu', ['c2'], 'r2'),
      node('GlobalAveragePool', ['r2'], 'gap'),
      node('Flatten', ['gap'], 'flat'),
      node('Gemm', ['flat', 'fc'], 'logits', { transB: { type: 'int', value: 1 } }),
      node('Exp', ['logits'], 'p'), // a float tail after the last int8 op
    ];
    const feeds = [{ x: float32([8, 3, 8, 8], Array.from({ length: 8 * 3 * 64 }, () => rng.normal())) }];
    const { graph: q } = await quantizeStatic(g, feeds, DEFAULT_STATIC, { threads: 1 });
    const kernels = await ortKernels(encodeModel(q).model);
    expect(kernels.floatOps).toMatchObject({ Div: 1, Tanh: 1, Exp: 1 });
    expect(kernels.islandOps).toEqual({ Tanh: 1 });
  });

  it('an excluded Conv stays float in ONNX Runtime: the node reading it stays float too, else ORT would quantize the Conv itself', async () => {
    const rng = new Random(1);
    const feeds = [{ input: float32([8, 3, 32, 32], Array.from({ length: 8 * 3072 }, () => rng.normal())) }];
    const float = buildZooModel('resnet18-cifar', { width: 0.25 });
    const { graph: q, plan } = await quantizeStatic(float, feeds, { ...DEFAULT_STATIC, exclude: ['layer3.0.conv2'] }, { threads: 1 });
    expect(plan.float.map((f) => [f.node, f.reason])).toEqual([
      ['layer3.0.conv2', 'excluded'],
      ['layer3.0.add', "reads float 'layer3.0.conv2': quantizing its input would have ONNX Runtime quantize that layer itself (per tensor)"],
    ]);
    const ops = await optimizedOps(q);
    // ORT runs it (and the Add after it) in float: 19 of the 20 Convs in int8.
    expect(ops).toMatchObject({ QLinearConv: 19, Conv: 1, QLinearAdd: 7 });
  });

  it('a bias two layers share gets an int32 form per layer (it stayed float: ORT quantized it itself and warned it unused)', async () => {
    // The same 8 → 8 Conv (weight and bias) on two different inputs: two input scales, two int32 biases.
    const { graph: float, shared } = convAppliedTwiceNet();
    const rng = new Random(3);
    const feeds = [{ input: float32([4, 3, 8, 8], Array.from({ length: 4 * 192 }, () => rng.normal())) }];
    // With bias correction (each layer's corrected copy) and without (the shared one itself).
    for (const biasCorrection of [true, false]) {
      const { graph: q } = await quantizeStatic(float, feeds, { ...DEFAULT_STATIC, biasCorrection }, { threads: 1 });
      const convs = q.nodes.filter((node) => node.opType === 'Conv').slice(1);
      expect(convs.map((c) => c.name)).toEqual([shared.name, 'again']);
      for (const conv of convs) {
        const [input, weight, bias] = [0, 1, 2].map((slot) => dqInput(q, conv, slot));
        expect(bias!.x?.dtype, `${conv.name} ${biasCorrection}`).toBe('int32');
        const expected = Array.from(weight!.scale.data as Float32Array, (s) => s * (input!.scale.data as Float32Array)[0]!);
        Array.from(bias!.scale.data as Float32Array).forEach((s, i) => expect(s).toBeCloseTo(expected[i]!, 9));
      }
      expect(dqInput(q, convs[0]!, 2).scale).not.toEqual(dqInput(q, convs[1]!, 2).scale);
      const read = new Set(q.nodes.flatMap((node) => node.inputs));
      expect([...q.initializers.keys()].filter((name) => !read.has(name)), `bias correction ${biasCorrection}`).toEqual([]);
      expect(await optimizedOps(q)).toMatchObject({ QLinearConv: 3, QLinearAdd: 2, QGemm: 1 });
    }
  });

  it('the PyTorch ResNet export fuses the same way (MaxPool on int8)', async () => {
    const rng = new Random(2);
    const feeds = [{ input: float32([4, 3, 16, 16], Array.from({ length: 4 * 768 }, () => rng.normal())) }];
    const float = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const { graph: q } = await quantizeStatic(float, feeds, DEFAULT_STATIC, { threads: 1 });
    const ops = await optimizedOps(q);
    // ORT's layout pass turns the int8 MaxPool into its channels-last int8 kernel.
    expect(ops).toMatchObject({ QLinearConv: 5, QLinearAdd: 2, NhwcMaxPool: 1, QLinearGlobalAveragePool: 1, QGemm: 1 });
    for (const float of ['Conv', 'Add', 'Gemm', 'MaxPool', 'DequantizeLinear']) expect(ops[float], float).toBeUndefined();
    expect(q.nodes.map(nodeLabel)).not.toContain('/relu/Relu');
  });
});
