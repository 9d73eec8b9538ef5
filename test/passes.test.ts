import { describe, expect, it } from 'vitest';
import { readModel } from '../src/onnx/io.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, int64, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import {
  constantsToInitializers,
  eliminateDeadCode,
  foldBatchNorm,
  foldShapeSubgraphs,
  INFERENCE_PIPELINE,
  insertBatchNorm,
  type ChannelMoments,
  removeIdentity,
  runPasses,
  type PassTrace,
} from '../src/passes/index.js';
import { runGraph } from '../src/runtime/ort.js';
import { DEFAULT_STATIC, quantizeStatic } from '../src/compress/quantize/quantize.js';
import { buildZooModel } from '../src/zoo/index.js';
import { Random } from '../src/util/random.js';
import { fixturePath, maxAbsDiff, randomInput, torchSidecar } from './helpers/fixtures.js';

const TOLERANCE = 1e-4;

async function outputsOf(graph: Graph, input: Tensor): Promise<Tensor[]> {
  const feeds = { [graph.inputs[0]!.name]: input };
  const out = await runGraph(graph, feeds);
  return graph.outputs.map((o) => out[o.name]!);
}

/** ORT on the graph before and after: every output equal within TOLERANCE. */
async function expectSameOutputs(before: Graph, after: Graph, input: Tensor): Promise<number> {
  const [a, b] = [await outputsOf(before, input), await outputsOf(after, input)];
  let worst = 0;
  a.forEach((t, i) => {
    expect(b[i]!.dims).toEqual(t.dims);
    worst = Math.max(worst, maxAbsDiff(t, b[i]!));
  });
  expect(worst).toBeLessThanOrEqual(TOLERANCE);
  return worst;
}

const count = (g: Graph, op: string): number => g.nodes.filter((n) => n.opType === op).length;

/** A zoo model with non-trivial BN statistics, so folding is really exercised. */
function zooWithRandomBn(): Graph {
  const g = buildZooModel('resnet18-cifar', { width: 0.25, seed: 3 });
  const rng = new Random(9);
  for (const [name, t] of g.initializers) {
    const n = t.data.length;
    const fill = (f: () => number): Tensor => float32(t.dims, Array.from({ length: n }, f));
    if (name.endsWith('running_mean')) g.initializers.set(name, fill(() => rng.normal() * 0.2));
    else if (name.endsWith('running_var')) g.initializers.set(name, fill(() => 0.5 + rng.next()));
    else if (/bn\d\.weight$|downsample\.1\.weight$/.test(name)) g.initializers.set(name, fill(() => 0.5 + rng.next()));
    else if (/bn\d\.bias$|downsample\.1\.bias$/.test(name)) g.initializers.set(name, fill(() => rng.normal() * 0.1));
  }
  return g;
}

describe('fold-batchnorm', () => {
  it('folds every BN of a PyTorch export into its Conv and matches ORT and PyTorch', async () => {
    const before = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    expect(count(before, 'BatchNormalization')).toBeGreaterThan(0);
    const after = foldBatchNorm(before);
    expect(count(after, 'BatchNormalization')).toBe(0);
    expect(count(after, 'Conv')).toBe(count(before, 'Conv'));
    const { input, output } = torchSidecar('torch-tiny-resnet.onnx');
    await expectSameOutputs(before, after, input);
    const [folded] = await outputsOf(after, input);
    expect(maxAbsDiff(folded!, output)).toBeLessThanOrEqual(TOLERANCE);
    // The running statistics are gone with the BN nodes.
    expect([...after.initializers.keys()].some((k) => k.includes('running'))).toBe(false);
  });

  it('folds a zoo ResNet with random BN statistics', async () => {
    const before = zooWithRandomBn();
    const after = foldBatchNorm(before);
    expect(count(after, 'BatchNormalization')).toBe(0);
    await expectSameOutputs(before, after, randomInput([2, 3, 32, 32]));
  });

  it('folds BN after a Gemm (transB 0 and 1, with and without C) and keeps shared weights intact', async () => {
    for (const transB of [0, 1]) {
      for (const withBias of [true, false]) {
        const g = emptyGraph('gemm_bn');
        const rng = new Random(transB * 2 + Number(withBias));
        const rand = (dims: number[], f = () => rng.normal()): Tensor =>
          float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, f));
        g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 6] }];
        g.outputs = [{ name: 'y', dtype: 'float32', shape: ['batch', 4] }, { name: 'z', dtype: 'float32', shape: ['batch', 4] }];
        g.initializers.set('W', rand(transB ? [4, 6] : [6, 4]));
        if (withBias) g.initializers.set('C', rand([4]));
        for (const p of ['gamma', 'beta', 'mean']) g.initializers.set(p, rand([4]));
        g.initializers.set('var', rand([4], () => 0.3 + rng.next()));
        const gemm = (out: string): Node => ({
          name: `gemm_${out}`, opType: 'Gemm', domain: '', inputs: ['x', 'W', ...(withBias ? ['C'] : [])], outputs: [out],
          attributes: { transB: { type: 'int', value: transB }, alpha: { type: 'float', value: 0.5 }, beta: { type: 'float', value: 2 } },
        });
        // A second Gemm reads the same W: folding must not change what it computes.
        g.nodes = [
          gemm('h'),
          { name: 'bn', opType: 'BatchNormalization', domain: '', inputs: ['h', 'gamma', 'beta', 'mean', 'var'], outputs: ['y'], attributes: {} },
          gemm('z'),
        ];
        const after = foldBatchNorm(g);
        expect(count(after, 'BatchNormalization')).toBe(0);
        await expectSameOutputs(g, after, randomInput([3, 6], 5));
      }
    }
  });

  it('leaves BN after a Gemm whose C is a [M, 1] row bias alone (M = features, but it broadcasts over rows)', async () => {
    const g = emptyGraph('gemm_row_bias');
    const rng = new Random(9);
    const rand = (dims: number[], f = () => rng.normal()): Tensor => float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, f));
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [3, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [3, 3] }];
    g.initializers.set('W', rand([3, 4]));
    g.initializers.set('C', rand([3, 1]));
    for (const p of ['gamma', 'beta', 'mean']) g.initializers.set(p, rand([3]));
    g.initializers.set('var', rand([3], () => 0.3 + rng.next()));
    g.nodes = [
      { name: 'gemm', opType: 'Gemm', domain: '', inputs: ['x', 'W', 'C'], outputs: ['h'], attributes: { transB: { type: 'int', value: 1 } } },
      { name: 'bn', opType: 'BatchNormalization', domain: '', inputs: ['h', 'gamma', 'beta', 'mean', 'var'], outputs: ['y'], attributes: {} },
    ];
    await expectSameOutputs(g, foldBatchNorm(g), randomInput([3, 4], 2));
  });

  it('leaves BN alone when the conv output has another reader', async () => {
    const g = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const bn = g.nodes.find((n) => n.opType === 'BatchNormalization')!;
    g.outputs.push({ name: bn.inputs[0]!, dtype: 'float32' });
    const after = foldBatchNorm(g);
    expect(after.nodes.some((n) => n.name === bn.name)).toBe(true);
    await expectSameOutputs(g, after, torchSidecar('torch-tiny-resnet.onnx').input);
  });
});

describe('insert-batchnorm', () => {
  /** Random positive variances and random means for every Conv output. */
  function randomMoments(graph: Graph, seed: number): Map<string, ChannelMoments> {
    const rng = new Random(seed);
    const moments = new Map<string, ChannelMoments>();
    for (const n of graph.nodes.filter((n) => n.opType === 'Conv')) {
      const channels = graph.initializers.get(n.inputs[1]!)!.dims[0]!;
      moments.set(n.outputs[0]!, {
        mean: Float64Array.from({ length: channels }, () => rng.normal()),
        variance: Float64Array.from({ length: channels }, () => 0.1 + 2 * rng.next()),
      });
    }
    return moments;
  }

  it('puts an identity BN after every Conv of a folded model, moves the bias into it, and folds back to the same weights', async () => {
    const folded = foldBatchNorm(await readModel(fixturePath('torch-tiny-resnet.onnx')));
    const convs = count(folded, 'Conv');
    const withBn = insertBatchNorm(folded, randomMoments(folded, 4));
    expect(count(withBn, 'BatchNormalization')).toBe(convs);
    for (const conv of withBn.nodes.filter((n) => n.opType === 'Conv')) expect(conv.inputs).toHaveLength(2);
    // The input graph is untouched (passes are pure).
    expect(count(folded, 'BatchNormalization')).toBe(0);
    const { input } = torchSidecar('torch-tiny-resnet.onnx');
    await expectSameOutputs(folded, withBn, input);

    const back = foldBatchNorm(withBn);
    expect(back.nodes.map((n) => n.opType)).toEqual(folded.nodes.map((n) => n.opType));
    await expectSameOutputs(folded, back, input);
    for (const [i, conv] of back.nodes.entries()) {
      if (conv.opType !== 'Conv') continue;
      for (const slot of [1, 2]) {
        const was = folded.initializers.get(folded.nodes[i]!.inputs[slot]!)!;
        const now = back.initializers.get(conv.inputs[slot]!)!;
        expect(maxAbsDiff(was, now), `${conv.name} input ${slot}`).toBeLessThanOrEqual(1e-5 * Math.max(1, ...Array.from(was.data as Float32Array, Math.abs)));
      }
    }
  });

  it('leaves Convs already followed by BN, and Convs without moments, alone', async () => {
    const model = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const unchanged = insertBatchNorm(model, randomMoments(model, 5));
    expect(count(unchanged, 'BatchNormalization')).toBe(count(model, 'BatchNormalization'));
    const folded = foldBatchNorm(model);
    const moments = randomMoments(folded, 6);
    const first = folded.nodes.find((n) => n.opType === 'Conv')!;
    moments.delete(first.outputs[0]!);
    expect(count(insertBatchNorm(folded, moments), 'BatchNormalization')).toBe(count(folded, 'Conv') - 1);
  });
});

describe('fold-shape-subgraphs', () => {
  it('replaces the Shape→Gather→Concat→Reshape chain with a static [0, -1] and keeps the batch free', async () => {
    const before = await readModel(fixturePath('torch-tiny-mobilenet.onnx'));
    expect(count(before, 'Shape')).toBeGreaterThan(0);
    const after = foldShapeSubgraphs(constantsToInitializers(before));
    for (const op of ['Shape', 'Gather', 'Unsqueeze', 'Concat'].slice(0, 3)) expect(count(after, op)).toBe(0);
    const reshape = after.nodes.find((n) => n.opType === 'Reshape')!;
    const target = after.initializers.get(reshape.inputs[1]!)!;
    expect(Array.from(target.data as BigInt64Array, Number)).toEqual([0, -1]);
    for (const batch of [1, 2, 5]) await expectSameOutputs(before, after, randomInput([batch, 3, 16, 16], batch));
    const { input, output } = torchSidecar('torch-tiny-mobilenet.onnx');
    const [y] = await outputsOf(after, input);
    expect(maxAbsDiff(y!, output)).toBeLessThanOrEqual(TOLERANCE);
    expect(inferShapes(after).types.get(after.outputs[0]!.name)?.shape).toEqual(['batch', 10]);
  });
});

describe('fold-shape-subgraphs: squeeze-excitation', () => {
  it("folds view(b, c) and expand_as (Shape of the batch-free input) to static targets: Expand's batch entry becomes 1", async () => {
    const before = await readModel(fixturePath('torch-tiny-senet.onnx'));
    const after = foldShapeSubgraphs(constantsToInitializers(before));
    expect(count(after, 'Shape')).toBe(0);
    const targets = after.nodes.filter((n) => n.opType === 'Expand').map((n) => Array.from(after.initializers.get(n.inputs[1]!)!.data as BigInt64Array, Number));
    expect(targets).toEqual([[1, 8, 16, 16], [1, 16, 8, 8]]);
    for (const batch of [1, 3]) await expectSameOutputs(before, after, randomInput([batch, 3, 16, 16], batch));
    const { input, output } = torchSidecar('torch-tiny-senet.onnx');
    const [y] = await outputsOf(after, input);
    expect(maxAbsDiff(y!, output)).toBeLessThanOrEqual(TOLERANCE);
  });

  it("folds x * gamma.expand_as(x) with a batch-less γ: the Mul brings the batch back, so the Expand's batch entry is 1", async () => {
    const g = emptyGraph('expand_scale', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['n', 3, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.initializers.set('gamma', float32([1, 3, 1, 1], [0.5, 2, -1]));
    g.nodes = [
      { name: 'shape', opType: 'Shape', domain: '', inputs: ['x'], outputs: ['s'], attributes: {} },
      { name: 'expand', opType: 'Expand', domain: '', inputs: ['gamma', 's'], outputs: ['e'], attributes: {} },
      { name: 'mul', opType: 'Mul', domain: '', inputs: ['x', 'e'], outputs: ['y'], attributes: {} },
    ];
    const after = foldShapeSubgraphs(g);
    expect(count(after, 'Shape')).toBe(0);
    expect(Array.from(after.initializers.get(after.nodes.find((n) => n.opType === 'Expand')!.inputs[1]!)!.data as BigInt64Array, Number)).toEqual([1, 3, 4, 4]);
    for (const batch of [1, 3]) await expectSameOutputs(g, after, randomInput([batch, 3, 4, 4], batch));
    // Its output a graph output, nothing brings the batch back: left computed.
    const bare = { ...g, outputs: [{ name: 'e', dtype: 'float32' as const }], nodes: g.nodes.slice(0, 2) };
    expect(count(foldShapeSubgraphs(bare), 'Shape')).toBe(1);
  });

  it('folds expand(-1, C, -1, -1) (ConstantOfShape → Equal → Where, no Shape) to a static target', async () => {
    const before = await readModel(fixturePath('torch-tiny-gatenet.onnx'));
    expect(count(before, 'Equal') + count(before, 'Where')).toBe(2);
    const after = foldShapeSubgraphs(constantsToInitializers(before));
    for (const op of ['ConstantOfShape', 'Equal', 'Where']) expect(count(after, op), op).toBe(0);
    // Where picks 1 where the entry was -1 (keep the input's dim) and C elsewhere.
    expect(Array.from(after.initializers.get(after.nodes.find((n) => n.opType === 'Expand')!.inputs[1]!)!.data as BigInt64Array, Number)).toEqual([1, 8, 1, 1]);
    for (const batch of [1, 3]) await expectSameOutputs(before, after, randomInput([batch, 3, 16, 16], batch));
    const { input, output } = torchSidecar('torch-tiny-gatenet.onnx');
    const [y] = await outputsOf(after, input);
    expect(maxAbsDiff(y!, output)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('leaves an Expand whose target has a free dim the input does not share (a free height) as computed', async () => {
    const g = emptyGraph('expand_free_h', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['n', 3, 'h', 4] }, { name: 'gate', dtype: 'float32', shape: ['n', 3, 1, 1] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.nodes = [
      { name: 'shape', opType: 'Shape', domain: '', inputs: ['x'], outputs: ['s'], attributes: {} },
      { name: 'expand', opType: 'Expand', domain: '', inputs: ['gate', 's'], outputs: ['y'], attributes: {} },
    ];
    const after = foldShapeSubgraphs(g);
    expect(count(after, 'Shape')).toBe(1);
    expect(after.nodes.find((n) => n.opType === 'Expand')!.inputs[1]).toBe('s');
  });
});

describe('fold-shape-subgraphs: a computation that stays', () => {
  it("leaves a target with a free height whole: c // 2 stays computed from Shape (ShuffleNet's shuffle), so pruning can follow it", async () => {
    const before = await readModel(fixturePath('torch-tiny-shufflenet-free.onnx'));
    const after = foldShapeSubgraphs(constantsToInitializers(before));
    const producer = new Map(after.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const shuffles = after.nodes.filter((n) => n.opType === 'Reshape' && producer.get(n.inputs[1]!)?.opType === 'Concat');
    expect(shuffles.length).toBe(8);
    for (const reshape of shuffles) {
      // Every entry of the target is computed: no constant from a folded piece among the Concat's inputs but the 2 parts.
      const stored = producer.get(reshape.inputs[1]!)!.inputs.filter((v) => after.initializers.has(v)).map((v) => Array.from(after.initializers.get(v)!.data as BigInt64Array, Number));
      expect(stored, reshape.name).toEqual(reshape.name.endsWith('_1') ? [[-1]] : [[2]]);
    }
    for (const [h, w] of [[16, 16], [24, 20]]) await expectSameOutputs(before, after, randomInput([2, 3, h!, w!], h));
  });

  it('a value both a staying target and a Slice read: the Slice gets the constant, the target the computation', async () => {
    // x[:, :C/2] and x.view(n, 2, C/2, h, w) from one C/2 = Shape(x)[1] / 2, with a free height and width.
    const g = emptyGraph('half', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['n', 4, 'h', 'w'] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }, { name: 'z', dtype: 'float32' }];
    const scalar = (name: string, v: number): void => void g.initializers.set(name, int64([1], [v]));
    scalar('zero', 0);
    scalar('one', 1);
    scalar('two', 2);
    scalar('four', 4);
    const node = (opType: string, inputs: string[], output: string): Node => ({ name: output, opType, domain: '', inputs, outputs: [output], attributes: {} });
    g.nodes = [
      node('Shape', ['x'], 's'),
      node('Gather', ['s', 'one'], 'c'),
      node('Div', ['c', 'two'], 'half'),
      node('Slice', ['x', 'zero', 'half', 'one'], 'y'),
      node('Gather', ['s', 'zero'], 'n'),
      node('Slice', ['s', 'two', 'four'], 'hw'),
      { name: 'target', opType: 'Concat', domain: '', inputs: ['n', 'two', 'half', 'hw'], outputs: ['t'], attributes: { axis: { type: 'int', value: 0 } } },
      node('Reshape', ['x', 't'], 'z'),
    ];
    const after = foldShapeSubgraphs(g);
    const slice = after.nodes.find((n) => n.name === 'y')!;
    expect(after.initializers.has(slice.inputs[2]!)).toBe(true);
    expect(after.nodes.find((n) => n.opType === 'Concat')!.inputs[2]).toBe('half');
    expect(after.nodes.map((n) => n.opType)).toContain('Div');
    for (const h of [2, 5]) await expectSameOutputs(g, after, randomInput([3, 4, h, 3], h));
    expect(inferShapes(after).types.get('z')?.shape).toEqual(['n', 2, 2, 'h', 'w']);
  });
});

describe('fold-shape-subgraphs: values it must not fold', () => {
  it('keeps INT64_MAX (slice to the end) exact instead of wrapping it to INT64_MIN', async () => {
    const g = emptyGraph('slice_to_end', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 6] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.initializers.set('starts', int64([1], [2]));
    g.initializers.set('axes', int64([1], [1]));
    g.initializers.set('zero', int64([1], [0]));
    g.initializers.set('end', { dtype: 'int64', dims: [], data: BigInt64Array.of(2n ** 63n - 1n) });
    g.nodes = [
      { name: 'unsq', opType: 'Unsqueeze', domain: '', inputs: ['end', 'zero'], outputs: ['ends'], attributes: {} },
      { name: 'slice', opType: 'Slice', domain: '', inputs: ['x', 'starts', 'ends', 'axes'], outputs: ['y'], attributes: {} },
    ];
    const after = runPasses(g, INFERENCE_PIPELINE);
    const [y] = await outputsOf(after, randomInput([1, 6], 1));
    expect(y!.dims).toEqual([1, 4]);
    await expectSameOutputs(g, after, randomInput([1, 6], 1));
  });

  it("leaves a shape value cast to float (torch's x.size(-1) ** -0.5) as computed, not as an int64 initializer", async () => {
    const g = emptyGraph('cast_shape', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 3, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 3, 4, 4] }];
    g.initializers.set('idx', int64([], [2]));
    g.nodes = [
      { name: 'shape', opType: 'Shape', domain: '', inputs: ['x'], outputs: ['s'], attributes: {} },
      { name: 'gather', opType: 'Gather', domain: '', inputs: ['s', 'idx'], outputs: ['h'], attributes: { axis: { type: 'int', value: 0 } } },
      { name: 'cast', opType: 'Cast', domain: '', inputs: ['h'], outputs: ['hf'], attributes: { to: { type: 'int', value: 1 } } },
      { name: 'mul', opType: 'Mul', domain: '', inputs: ['x', 'hf'], outputs: ['y'], attributes: {} },
    ];
    const after = runPasses(g, INFERENCE_PIPELINE);
    expect(inferShapes(after).types.get('hf')?.dtype ?? after.initializers.get('hf')?.dtype).toBe('float32');
    await expectSameOutputs(g, after, randomInput([1, 3, 4, 4], 3));
  });
});

describe('remove-identity', () => {
  function chain(): Graph {
    const g = emptyGraph('ids');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [2, 3] }];
    g.outputs = [{ name: 'out', dtype: 'float32', shape: [2, 3] }, { name: 'passthrough', dtype: 'float32', shape: [2, 3] }];
    const node = (opType: string, inputs: string[], outputs: string[]): Node => ({ name: outputs[0]!, opType, domain: '', inputs, outputs, attributes: {} });
    g.nodes = [
      node('Identity', ['x'], ['a']),
      node('Relu', ['a'], ['b']),
      node('Dropout', ['b'], ['c']),
      node('Identity', ['c'], ['d']),
      node('Sigmoid', ['d'], ['e']),
      node('Identity', ['e'], ['out']),
      node('Identity', ['x'], ['passthrough']),
    ];
    return g;
  }

  it('removes Identity and Dropout, keeps output names and the input→output Identity', async () => {
    const before = chain();
    const after = removeIdentity(before);
    expect(after.nodes.map((n) => n.opType)).toEqual(['Relu', 'Sigmoid', 'Identity']);
    expect(after.outputs.map((o) => o.name)).toEqual(['out', 'passthrough']);
    await expectSameOutputs(before, after, randomInput([2, 3]));
  });

  it('keeps a Dropout whose mask is read', () => {
    const g = chain();
    g.nodes[2]!.outputs.push('mask');
    g.outputs.push({ name: 'mask', dtype: 'bool', shape: [2, 3] });
    expect(removeIdentity(g).nodes.some((n) => n.opType === 'Dropout')).toBe(true);
  });
});

describe('remove-identity: nodes that compute nothing', () => {
  const ones = (dims: number[]): Tensor => float32(dims, new Array<number>(dims.reduce((a, b) => a * b, 1)).fill(1));

  /** x [2, 3, 4, 4] through `middle` (each reading the previous value, `v0` = x), then a Relu to y. */
  function through(middle: { opType: string; inputs: (prev: string) => string[]; attributes?: Node['attributes'] }[], constants: Record<string, Tensor>): Graph {
    const g = emptyGraph('noops');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [2, 3, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    for (const [name, t] of Object.entries(constants)) g.initializers.set(name, t);
    let prev = 'x';
    g.nodes = middle.map((m, i) => {
      const node: Node = { name: `n${i}`, opType: m.opType, domain: '', inputs: m.inputs(prev), outputs: [`v${i}`], attributes: m.attributes ?? {} };
      prev = `v${i}`;
      return node;
    });
    g.nodes.push({ name: 'relu', opType: 'Relu', domain: '', inputs: [prev], outputs: ['y'], attributes: {} });
    return g;
  }

  it('removes a Pad of zeros, Mul/Div by ones, Add/Sub of zeros, a same-type Cast and an identity Transpose', async () => {
    const g = through([
      { opType: 'Pad', inputs: (p) => [p, 'no_pads'] },
      { opType: 'Mul', inputs: (p) => ['one', p] },
      { opType: 'Mul', inputs: (p) => [p, 'ones_c'] },
      { opType: 'Div', inputs: (p) => [p, 'one'] },
      { opType: 'Add', inputs: (p) => ['zero', p] },
      { opType: 'Sub', inputs: (p) => [p, 'zero'] },
      { opType: 'Cast', inputs: (p) => [p], attributes: { to: { type: 'int', value: 1 } } },
      { opType: 'Transpose', inputs: (p) => [p], attributes: { perm: { type: 'ints', value: [0, 1, 2, 3] } } },
    ], { no_pads: int64([8], [0, 0, 0, 0, 0, 0, 0, 0]), one: float32([], [1]), ones_c: ones([3, 1, 1]), zero: float32([], [0]) });
    const after = removeIdentity(g);
    expect(after.nodes.map((n) => n.opType)).toEqual(['Relu']);
    expect(after.nodes[0]!.inputs).toEqual(['x']);
    await expectSameOutputs(g, after, randomInput([2, 3, 4, 4]));
  });

  it('keeps each node whose constants change the values or the shape', () => {
    const kept: [string, Graph][] = [
      ['a Pad that shifts (pads 1 and -1)', through([{ opType: 'Pad', inputs: (p) => [p, 'shift'] }], { shift: int64([8], [0, 0, 1, 0, 0, 0, -1, 0]) })],
      ['a Mul by ones that broadcasts to a bigger shape', through([{ opType: 'Mul', inputs: (p) => [p, 'wide'] }], { wide: ones([5, 1, 1, 1, 1]) })],
      ['a Mul by 2', through([{ opType: 'Mul', inputs: (p) => [p, 'two'] }], { two: float32([], [2]) })],
      ['a Mul by ones and one 1.5', through([{ opType: 'Mul', inputs: (p) => [p, 'almost'] }], { almost: float32([3, 1, 1], [1, 1.5, 1]) })],
      ['0 − x', through([{ opType: 'Sub', inputs: (p) => ['zero', p] }], { zero: float32([], [0]) })],
      ['1 / x', through([{ opType: 'Div', inputs: (p) => ['one', p] }], { one: float32([], [1]) })],
      ['a Mul of two values', through([{ opType: 'Mul', inputs: (p) => [p, p] }], {})],
      ['a Cast to float16', through([{ opType: 'Cast', inputs: (p) => [p], attributes: { to: { type: 'int', value: 10 } } }], {})],
      ['a Transpose that swaps H and W', through([{ opType: 'Transpose', inputs: (p) => [p], attributes: { perm: { type: 'ints', value: [0, 1, 3, 2] } } }], {})],
      ['a Reshape to another shape', through([{ opType: 'Reshape', inputs: (p) => [p, 'flat'] }], { flat: int64([2], [2, 48]) })],
      ['Dropout in training mode', through([{ opType: 'Dropout', inputs: (p) => [p, '', 'on'] }], { on: makeTensor('bool', [], new Uint8Array([1])) })],
    ];
    for (const [what, g] of kept) expect(removeIdentity(g).nodes.length, what).toBe(2);
  });

  it('removes a Reshape and an Expand to the shape the value has', async () => {
    const g = through([
      { opType: 'Reshape', inputs: (p) => [p, 'same'] },
      { opType: 'Expand', inputs: (p) => [p, 'bcast'] },
    ], { same: int64([4], [2, 3, 4, 4]), bcast: int64([2], [1, 4]) });
    const after = removeIdentity(g);
    expect(after.nodes.map((n) => n.opType)).toEqual(['Relu']);
    await expectSameOutputs(g, after, randomInput([2, 3, 4, 4]));
  });

  it('cleans what PyTorch leaves (opset 9 avg_pool2d Pad, x * 1.0 + 0.0, a view to its own shape), outputs as PyTorch computed', async () => {
    const before = await readModel(fixturePath('torch-tiny-leftovers-op9.onnx'));
    const after = runPasses(before, INFERENCE_PIPELINE);
    expect(after.nodes.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'AveragePool', 'Conv', 'Relu', 'Flatten', 'Gemm']);
    const { input, output } = torchSidecar('torch-tiny-leftovers-op9.onnx');
    expect(maxAbsDiff((await outputsOf(after, input))[0]!, output)).toBeLessThan(TOLERANCE);
  });

  it('leaves int8 quantization nothing of them to wrap in QuantizeLinear/DequantizeLinear', async () => {
    const model = await readModel(fixturePath('torch-tiny-leftovers-op9.onnx'));
    const feeds = [0, 1, 2, 3].map((seed) => ({ input: randomInput([2, 3, 16, 16], seed) }));
    const { graph } = await quantizeStatic(model, feeds, DEFAULT_STATIC, { threads: 1 });
    const compute = graph.nodes.filter((n) => n.opType !== 'QuantizeLinear' && n.opType !== 'DequantizeLinear').map((n) => n.opType);
    expect(compute).toEqual(['Conv', 'AveragePool', 'Conv', 'Flatten', 'Gemm']);
    // One requantization per activation: the input, both convs, the pool and the flattened features.
    expect(count(graph, 'QuantizeLinear')).toBe(5);
  });
});

describe('constants and dead code', () => {
  it('moves Constant values into initializers and drops nodes that reach no output', async () => {
    const g = emptyGraph('consts');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [2, 2] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [2, 2] }];
    g.initializers.set('unused', float32([2], [1, 2]));
    g.nodes = [
      { name: 'k', opType: 'Constant', domain: '', inputs: [], outputs: ['k'], attributes: { value: { type: 'tensor', value: float32([2], [3, -1]) } } },
      { name: 's', opType: 'Constant', domain: '', inputs: [], outputs: ['s'], attributes: { value_ints: { type: 'ints', value: [4] } } },
      { name: 'dead', opType: 'Reshape', domain: '', inputs: ['x', 's'], outputs: ['flat'], attributes: {} },
      { name: 'mul', opType: 'Mul', domain: '', inputs: ['x', 'k'], outputs: ['y'], attributes: {} },
    ];
    const moved = constantsToInitializers(g);
    expect(count(moved, 'Constant')).toBe(0);
    expect(Array.from(moved.initializers.get('s')!.data as BigInt64Array)).toEqual([4n]);
    const clean = eliminateDeadCode(moved);
    expect(clean.nodes.map((n) => n.name)).toEqual(['mul']);
    expect([...clean.initializers.keys()]).toEqual(['k']);
    await expectSameOutputs(g, clean, randomInput([2, 2]));
  });
});

describe('pipeline', () => {
  it('runs every pass in order, traces them, and never mutates its input', async () => {
    const before = await readModel(fixturePath('torch-tiny-mobilenet.onnx'));
    const snapshot = structuredClone(before.nodes);
    const traces: PassTrace[] = [];
    const after = runPasses(before, INFERENCE_PIPELINE, (t) => traces.push(t));
    expect(traces.map((t) => t.pass)).toEqual(INFERENCE_PIPELINE.map((p) => p.name));
    expect(before.nodes).toEqual(snapshot);
    expect(count(after, 'BatchNormalization')).toBe(0);
    expect(after.nodes.length).toBeLessThan(before.nodes.length);
    await expectSameOutputs(before, after, torchSidecar('torch-tiny-mobilenet.onnx').input);
  });

  it('keeps an int64 shape constant as int64', () => {
    const g = foldShapeSubgraphs(emptyGraphWithShape());
    expect(g.initializers.get('shape_out')?.dtype).toBe('int64');
  });
});

function emptyGraphWithShape(): Graph {
  const g = emptyGraph('shape');
  g.inputs = [{ name: 'x', dtype: 'float32', shape: [2, 3] }];
  g.outputs = [{ name: 'y', dtype: 'float32', shape: [3, 2] }];
  g.initializers.set('two', int64([1], [2]));
  g.nodes = [
    { name: 'shape', opType: 'Shape', domain: '', inputs: ['x'], outputs: ['shape_out'], attributes: {} },
    { name: 'rev', opType: 'Reshape', domain: '', inputs: ['x', 'shape_out'], outputs: ['y0'], attributes: {} },
    { name: 't', opType: 'Transpose', domain: '', inputs: ['y0'], outputs: ['y'], attributes: {} },
  ];
  return g;
}
