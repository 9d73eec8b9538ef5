import { mkdtempSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cloneGraph, emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { encodeModel, writeModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { loadModel } from '../src/onnx/validate.js';
import { loadedModelStats, modelStats } from '../src/runtime/stats.js';
import { checkImageSizeFits } from '../src/onnx/image-input.js';
import { Net } from './prune-fixtures.js';
import { calibrationTargets, computeParams, convertFloat16, DEFAULT_STATIC, insertQdq, planQuantization, prepareFloatGraph, type TensorRange } from '../src/compress/quantize/index.js';
import { constantsToInitializers } from '../src/passes/index.js';
import { parameterLayers, parametersOf } from '../src/passes/freeze-layers.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = (name: string): string => path.join(REPO, 'test/fixtures', name);

/**
 * Parameter counts from PyTorch (/usr/bin/python3, torch 1.13, the modules of scripts/make-torch-fixtures.py):
 *   TinyResNet / TinyMobileNet: sum(p.numel() for p in model.parameters())  → 2930 / 1202
 *   TinyResNet with every conv+BN pair fused by torch.nn.utils.fusion.fuse_conv_bn_eval, summed the same
 *   way (each BN's weight and bias, 2·C, become one conv bias of C)           → 2874
 * The unfolded exports keep BatchNormalization, so its running mean/var must not count.
 */
const TORCH_PARAMS: Record<string, number> = {
  'torch-tiny-resnet.onnx': 2930,
  'torch-tiny-resnet-folded.onnx': 2874,
  'torch-tiny-mobilenet.onnx': 1202,
  // TinyGNNet / TinyGN1Net (GroupNorm: its γ and β are the Mul and Add after torch's InstanceNormalization).
  'torch-tiny-gnnet.onnx': 13330,
  'torch-tiny-gn1net.onnx': 4082,
  // TinyConvNeXt: its layer scales are Mul constants (they went uncounted: 18682).
  'torch-tiny-convnext.onnx': 18746,
};

function node(opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node {
  return { name: `${opType}_${outputs[0]}`, opType, domain: '', inputs, outputs, attributes };
}

describe('modelStats on PyTorch exports', () => {
  for (const [name, params] of Object.entries(TORCH_PARAMS)) {
    it(`${name}: params equal PyTorch's count`, async () => {
      const file = fixture(name);
      const { graph, facts } = await loadModel(file);
      const bytes = readFileSync(file);
      const stats = modelStats(graph, facts, { model: bytes });
      expect(stats.params).toBe(params);
      expect(stats.nonzeroParams).toBe(params); // random init: no exact zeros
      expect(stats.sizeBytes).toBe(bytes.byteLength);
      expect(stats.gzipBytes).toBeGreaterThan(0);
      expect(stats.gzipBytes).toBeLessThan(stats.sizeBytes);
      expect(stats.macs).toBe(facts.totalMacs);
      expect(stats.macs).toBeGreaterThan(0);
      expect(stats.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 3, 16, 16] }]);
      expect(stats.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['batch', 10] }]);
      expect(Object.values(stats.opHistogram).reduce((a, v) => a + v, 0)).toBe(graph.nodes.length);
    });
  }

  it("GroupNorm's fixed 1s and 0s are no parameters wherever they are stored: as initializers (a trained model), behind Q/DQ pairs (int8), per layer", async () => {
    const { graph } = await loadModel(fixture('torch-tiny-gnnet.onnx'));
    const stored = constantsToInitializers(graph);
    expect(modelStats(stored, inferShapes(stored)).params).toBe(13330);
    const perLayer = [...parameterLayers(stored).values()].flat().flatMap((n) => parametersOf(stored, n));
    expect(perLayer.reduce((sum, name) => sum + stored.initializers.get(name)!.data.length, 0)).toBe(13330);
    // int8: the convs, γ and β behind DequantizeLinear, counted once each; the norms' 1s and 0s stay out.
    const prepared = prepareFloatGraph(graph, DEFAULT_STATIC);
    const plan = planQuantization(prepared.graph, prepared.facts, DEFAULT_STATIC);
    const ranges = new Map<string, TensorRange>(calibrationTargets(plan).map((t) => [t, { min: -1, max: 2 }]));
    const int8 = insertQdq(prepared.graph, plan, computeParams(prepared.graph, plan, ranges, DEFAULT_STATIC));
    expect(int8.nodes.filter((n) => n.opType === 'InstanceNormalization' && int8.nodes.some((q) => q.opType === 'DequantizeLinear' && q.outputs[0] === n.inputs[0])).length).toBe(7);
    expect(modelStats(int8, inferShapes(int8)).params).toBe(13330);
    // fp16: the 1s and 0s stored as float16, read through a Cast in 'weights' mode.
    for (const mode of ['full', 'weights'] as const) {
      const half = convertFloat16(graph, mode).graph;
      expect(modelStats(half, inferShapes(half)).params, mode).toBe(13330);
    }
  });

  it("an Einsum's stored operand is a weight, as PyTorch counts torch.einsum(x, W)'s W (a trial's count left its 512 out)", () => {
    const g = emptyGraph('einsum', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: ['N', 5, 4, 4] }];
    g.initializers.set('W', float32([5, 3], Array.from({ length: 15 }, (_, i) => i + 1)));
    g.nodes = [{ name: 'mix', opType: 'Einsum', domain: '', inputs: ['x', 'W'], outputs: ['y'], attributes: { equation: { type: 'string', value: 'nchw,oc->nohw' } } }];
    expect(modelStats(g, undefined).params).toBe(15);
  });

  it('an Add or Mul learns what the engine trains: a 1-output Linear\'s bias, not a per-channel preprocessing constant', () => {
    const linear = new Net([1, 4, 8]);
    const one = linear.output(linear.op('Add', linear.op('MatMul', 'input', linear.weight([8, 1])), linear.constant(float32([1], [0.1]))));
    const pre = new Net([1, 3, 8, 8]);
    const scaled = pre.op('Add', pre.op('Mul', 'input', pre.constant(float32([1, 3, 1, 1], [4.4, 4.5, 4.4]))), pre.constant(float32([1, 3, 1, 1], [-2, -2, -2])));
    const preprocessed = pre.output(pre.conv(scaled, 3, 4));
    // PyTorch: Linear(8, 1) has 9; a Conv(3, 4, 3) with bias 112 (the mean and std are buffers).
    for (const [graph, params] of [[one, 9], [preprocessed, 112]] as const) {
      expect(modelStats(graph, inferShapes(graph)).params).toBe(params);
      const perLayer = [...parameterLayers(graph).values()].flat().flatMap((n) => parametersOf(graph, n));
      expect(perLayer.reduce((sum, name) => sum + graph.initializers.get(name)!.data.length, 0)).toBe(params);
    }
  });

  it("a fresh export's parameters torch.onnx stored once (Identity nodes) count as PyTorch counts them", async () => {
    // Default init: every γ and running variance is one tensor of ones, every β and mean one of zeros.
    const { graph, facts } = await loadModel(fixture('torch-tiny-resnet-fresh.onnx'));
    expect(graph.nodes.filter((n) => n.opType === 'Identity').length).toBeGreaterThan(10);
    const stats = modelStats(graph, facts);
    expect(stats.params).toBe(2930);
    // The five BNs' β are zero: 8 + 8 + 8 + 16 + 16 values.
    expect(stats.nonzeroParams).toBe(2930 - 56);
    // fp16 storage puts a Cast behind each Identity: still each parameter its own.
    for (const mode of ['weights', 'full'] as const) {
      const half = convertFloat16(graph, mode).graph;
      expect(modelStats(half, inferShapes(half)).params, mode).toBe(2930);
    }
  });

  it('fp16-weights and full fp16 conversions keep the parameter count (weights behind a Cast count)', async () => {
    const { graph } = await loadModel(fixture('torch-tiny-resnet-folded.onnx'));
    for (const mode of ['weights', 'full'] as const) {
      const half = convertFloat16(graph, mode).graph;
      const stats = modelStats(half, inferShapes(half));
      expect(stats.params, mode).toBe(TORCH_PARAMS['torch-tiny-resnet-folded.onnx']);
      expect(stats.nonzeroParams, mode).toBe(stats.params);
    }
  });

  it('weights written as Constant nodes count (tensor or value_floats): pruning, which makes them initializers, reported 0 → 1.9 k', async () => {
    const { graph } = await loadModel(fixture('torch-tiny-resnet-folded.onnx'));
    const asConstants: Graph = { ...graph, initializers: new Map(), nodes: [...[...graph.initializers].map(([name, t], i): Node => ({
      name: `k${i}`, opType: 'Constant', domain: '', inputs: [], outputs: [name],
      attributes: t.dims.length === 1 && t.dtype === 'float32' ? { value_floats: { type: 'floats', value: [...(t.data as Float32Array)] } } : { value: { type: 'tensor', value: t } },
    })), ...graph.nodes] };
    expect(modelStats(asConstants, inferShapes(asConstants)).params).toBe(TORCH_PARAMS['torch-tiny-resnet-folded.onnx']);
  });

  it('folded TinyResNet: op counts and weight bytes follow from the module (every float is a parameter)', async () => {
    const { graph, facts } = await loadModel(fixture('torch-tiny-resnet-folded.onnx'));
    const stats = modelStats(graph, facts, { model: readFileSync(fixture('torch-tiny-resnet-folded.onnx')) });
    expect(stats.opHistogram).toEqual({ Conv: 5, Relu: 4, Add: 2, MaxPool: 1, GlobalAveragePool: 1, Flatten: 1, Gemm: 1 });
    expect(stats.weightDtypes).toEqual({ float32: 2874 * 4 });
  });

  it('unfolded TinyResNet: weight bytes include the BN running statistics that params leave out', async () => {
    const { graph, facts } = await loadModel(fixture('torch-tiny-resnet.onnx'));
    const stats = modelStats(graph, facts, { model: readFileSync(fixture('torch-tiny-resnet.onnx')) });
    // Running mean + var of BNs with 8, 8, 8, 16, 16 channels.
    expect(stats.weightDtypes).toEqual({ float32: (2930 + 2 * (8 + 8 + 8 + 16 + 16)) * 4 });
    expect(stats.opHistogram['BatchNormalization']).toBe(5);
  });

  it('zeroed weights lower nonzeroParams only; without file bytes the encoded graph is measured', async () => {
    const { graph, facts } = await loadModel(fixture('torch-tiny-resnet-folded.onnx'));
    const pruned = cloneGraph(graph);
    const convWeight = graph.nodes.find((n) => n.opType === 'Conv')!.inputs[1]!;
    const w = graph.initializers.get(convWeight)!;
    const data = Float32Array.from(w.data as Float32Array);
    data.fill(0, 0, 100);
    pruned.initializers.set(convWeight, makeTensor('float32', w.dims, data));
    const stats = modelStats(pruned, facts);
    expect(stats.params).toBe(2874);
    expect(stats.nonzeroParams).toBe(2874 - 100);
    const encoded = encodeModel(pruned).model;
    expect(stats.sizeBytes).toBe(encoded.byteLength);
    expect(stats.gzipBytes).toBeLessThan(stats.sizeBytes);
  });

  it('weights in an external data file count toward the size on disk and the download', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-stats-'));
    const file = path.join(dir, 'ext.onnx');
    const inline = await loadModel(fixture('torch-tiny-resnet-folded.onnx'));
    await writeModel(inline.graph, file, { externalData: { thresholdBytes: 256 } });
    const dataBytes = statSync(`${file}.data`).size;
    expect(dataBytes).toBeGreaterThan(0);
    const loaded = await loadModel(file);
    expect(loaded.externalFiles).toEqual([realpathSync(`${file}.data`)]);
    expect(loaded.sizeBytes).toBe(statSync(file).size + dataBytes);
    const stats = await loadedModelStats(loaded);
    expect(stats.sizeBytes).toBe(loaded.sizeBytes);
    expect(stats.externalDataBytes).toBe(dataBytes);
    // The weights dominate: a small .onnx alone would have gzipped to a fraction of this.
    const inlineStats = await loadedModelStats(inline);
    expect(stats.gzipBytes).toBeGreaterThan(0.8 * inlineStats.gzipBytes);
    expect(stats.params).toBe(inlineStats.params);
  });

  it('MACs are per image: a fixed batch is divided out, a free H×W is pinned to the given size or unknown', async () => {
    const { graph, facts } = await loadModel(fixture('torch-tiny-resnet-folded.onnx'));
    const perImage = modelStats(graph, facts).macs!;
    expect(perImage).toBeGreaterThan(0);
    const withInput = (shape: (number | string)[]): Graph => ({ ...graph, inputs: graph.inputs.map((v) => (v.name === 'input' ? { ...v, shape } : v)) });
    // The export's Flatten keeps the batch, so a fixed batch of 4 infers and counts 4 images.
    const four = withInput([4, 3, 16, 16]);
    const fourFacts = inferShapes(four);
    expect(fourFacts.totalMacs).toBe(4 * perImage);
    expect(modelStats(four, fourFacts).macs).toBe(perImage);
    const free = withInput(['batch', 3, 'h', 'w']);
    const freeFacts = inferShapes(free);
    expect(modelStats(free, freeFacts).macs).toBeNull();
    expect(modelStats(free, freeFacts, undefined, [16, 16]).macs).toBe(perImage);
    // 32×32 has 4× the pixels: every conv does 4× the work, only the final Gemm does not.
    const gemm = 16 * 10;
    expect(modelStats(free, freeFacts, undefined, [32, 32]).macs).toBe(4 * (perImage - gemm) + gemm);
  });

  it('gzip size is a real gzip of the bytes', () => {
    const bytes = new Uint8Array(50_000).fill(7);
    const graph = emptyGraph();
    const stats = modelStats(graph, inferShapes(graph), { model: bytes });
    expect(stats.sizeBytes).toBe(50_000);
    expect(stats.gzipBytes).toBeLessThan(200);
  });
});

describe('param roles in hand-built graphs', () => {
  it('int8 QDQ: quantized weight and int32 bias count, scales and zero points do not; zero point sets what "zero" is', () => {
    // W_q [2 out-channels, 2, 1, 1] per-channel with zero points [0, 3]: channel 0 holds [0, 5] (1 non-zero),
    // channel 1 holds [3, 3] (both equal its zero point → 0 non-zero). Bias [2] int32 = [0, 9] (1 non-zero).
    const inits = new Map<string, Tensor>([
      ['x_scale', float32([], [0.1])],
      ['x_zp', makeTensor('int8', [], new Int8Array([0]))],
      ['w_q', makeTensor('int8', [2, 2, 1, 1], new Int8Array([0, 5, 3, 3]))],
      ['w_scale', float32([2], [0.5, 0.25])],
      ['w_zp', makeTensor('int8', [2], new Int8Array([0, 3]))],
      ['b_q', makeTensor('int32', [2], new Int32Array([0, 9]))],
      ['b_scale', float32([2], [0.05, 0.025])],
    ]);
    const graph: Graph = {
      ...emptyGraph('qdq', 13),
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2, 4, 4] }],
      outputs: [{ name: 'y', dtype: 'float32' }],
      nodes: [
        node('QuantizeLinear', ['x', 'x_scale', 'x_zp'], ['xq']),
        node('DequantizeLinear', ['xq', 'x_scale', 'x_zp'], ['xd']),
        node('DequantizeLinear', ['w_q', 'w_scale', 'w_zp'], ['w'], { axis: { type: 'int', value: 0 } }),
        node('DequantizeLinear', ['b_q', 'b_scale'], ['b'], { axis: { type: 'int', value: 0 } }),
        node('Conv', ['xd', 'w', 'b'], ['y']),
      ],
      initializers: inits,
    };
    const stats = modelStats(graph, inferShapes(graph));
    expect(stats.params).toBe(4 + 2);
    expect(stats.nonzeroParams).toBe(1 + 1);
    expect(stats.weightDtypes).toEqual({ float32: 4 + 8 + 8, int8: 1 + 4 + 2, int32: 8 });
    expect(stats.opHistogram).toEqual({ QuantizeLinear: 1, DequantizeLinear: 3, Conv: 1 });
  });

  it('MatMul constant operand and the Add bias after it count; a shared weight counts once; an activation Add does not', () => {
    const graph: Graph = {
      ...emptyGraph('linear'),
      inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
      outputs: [{ name: 'y', dtype: 'float32' }],
      nodes: [
        node('MatMul', ['x', 'w'], ['m1']),
        node('Add', ['m1', 'bias'], ['h']),
        node('MatMul', ['w_t', 'h'], ['m2']), // constant left operand [3, 2] · h [2, 3]
        node('MatMul', ['h', 'w2'], ['m3']), // w2 is read twice
        node('Add', ['m3', 'offset'], ['h2']), // bias of m3
        node('MatMul', ['h2', 'w2'], ['m4']),
        node('Add', ['m4', 'm2_flat'], ['y']), // two activations: nothing to count
        node('Reshape', ['m2', 'shape'], ['m2_flat']), // shape constant: not a parameter
      ],
      initializers: new Map<string, Tensor>([
        ['w', float32([3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1])],
        ['bias', float32([3], [0, 0, 0.5])],
        ['w_t', float32([3, 2], [1, 2, 3, 4, 5, 6])],
        ['w2', float32([3, 3], new Array(9).fill(1))],
        ['offset', float32([3], [1, 1, 1])],
        ['shape', makeTensor('int64', [2], new BigInt64Array([2n, 3n]))],
      ]),
    };
    const stats = modelStats(graph, { types: new Map(), known: new Map(), nodes: [], totalMacs: 42 });
    expect(stats.params).toBe(9 + 3 + 6 + 9 + 3);
    expect(stats.nonzeroParams).toBe(3 + 1 + 6 + 9 + 3);
    expect(stats.macs).toBe(42);
  });
});

describe('checkImageSizeFits: the sizes a free-size model takes', () => {
  /** [N, 3, h, w] → Conv 3×3 (pad 1) → Flatten → Gemm over 4·side² features: it takes side × side only. */
  function flattenHead(side: number): Graph {
    const g = emptyGraph('flatten-head');
    g.opsets = { '': 17 };
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['n', 3, 'h', 'w'] }];
    g.initializers.set('cw', float32([4, 3, 3, 3], new Array(108).fill(0.1)));
    g.initializers.set('gw', float32([10, 4 * side * side], new Array(40 * side * side).fill(0.01)));
    g.nodes = [
      node('Conv', ['x', 'cw'], ['c'], { kernel_shape: { type: 'ints', value: [3, 3] }, pads: { type: 'ints', value: [1, 1, 1, 1] } }),
      node('Flatten', ['c'], ['f']),
      node('Gemm', ['f', 'gw'], ['y'], { transB: { type: 'int', value: 1 } }),
    ];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: ['n', 10] }];
    return g;
  }
  const refusal = (g: Graph, size: [number, number]): string => {
    try {
      checkImageSizeFits(g, size, 'm.onnx');
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it('a Flatten before the classifier: one size, named whether the given one is smaller or larger', () => {
    const g = flattenHead(16);
    expect(refusal(g, [16, 16])).toBe('');
    for (const side of [8, 32]) expect(refusal(g, [side, side])).toMatch(/it takes 16×16, and not every larger size .* pass --image-size 16,16/);
    // A side that is no power of two (MNIST's 28) is found too.
    expect(refusal(flattenHead(28), [32, 32])).toMatch(/it takes 28×28/);
  });
});
