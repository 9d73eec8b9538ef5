import './helpers/engine-env.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportQat, settleScales, toCanonicalLayout, toQatGraph, type QatGraph } from '../src/compress/qat/index.js';
import { DEFAULT_STATIC, imageFeeds, nodeLabel, ortKernels, quantizeStatic, sampleImages, type QuantizedResult } from '../src/compress/quantize/index.js';
import { EXACT_ON_HOST } from './helpers/int8-host.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION, type ImageSet } from '../src/data/types.js';
import { nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import { cloneGraph, emptyGraph, GraphIndex, type Graph, type Node } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { validateGraph } from '../src/onnx/validate.js';
import { runGraph } from '../src/runtime/ort.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { buildZooModel } from '../src/zoo/index.js';
import { CIFAR_DIR } from './helpers/fixtures.js';

/**
 * The QAT graph as the engine runs it (latent float weights, fake quantization) against the exported
 * integer QDQ graph as ONNX Runtime runs it (QLinearConv, QGemm, ...): layer by layer within one
 * quantization step on the same input, and "what was trained is what ships" — export changes nothing
 * but the int32 bias rounding.
 */

const available = nativeAvailable();
const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));
const N = 32;

function images(set: ImageSet, from: number, n: number): Tensor<'float32'> {
  const x = new Float32Array(n * 3072);
  const { scale, mean, std } = CIFAR10_NORMALIZATION;
  for (let i = 0; i < n * 3072; i++) {
    const c = Math.floor((i % 3072) / 1024);
    x[i] = (set.pixels[from * 3072 + i]! * scale - mean[c]!) / std[c]!;
  }
  return float32([n, 3, 32, 32], x);
}

/** The weighted layers whose input and output are quantized activations (the units int8 kernels fuse). */
function quantizedLayers(g: Graph): Node[] {
  const index = new GraphIndex(g);
  return g.nodes.filter((n) => {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') return false;
    const inDq = index.producer.get(n.inputs[0]!);
    const readers = index.consumersOf(n.outputs[0]!);
    return inDq?.opType === 'DequantizeLinear' && readers.length === 1 && readers[0]!.opType === 'QuantizeLinear';
  });
}

/**
 * One quantized layer cut out of `g`: input x (float) → its input's Q → DQ → the layer (with whatever
 * weight and bias nodes feed it) → its output's Q → DQ. Run on grid values, the input Q is exact.
 */
function layerSubgraph(g: Graph, label: string, dims: number[]): Graph {
  const index = new GraphIndex(g);
  const layer = g.nodes.find((n) => nodeLabel(n) === label)!;
  const inDq = index.producer.get(layer.inputs[0]!)!;
  const qOut = index.consumersOf(layer.outputs[0]!)[0]!;
  const dqOut = index.consumersOf(qOut.outputs[0]!).find((n) => n.opType === 'DequantizeLinear')!;
  const keep = new Set<Node>([inDq, layer, qOut, dqOut]);
  // Layout nodes between the input's Q and its DQ (PTQ's channel padding for the RGB conv) come along.
  let source = inDq.inputs[0]!;
  for (let p = index.producer.get(source); p && p.opType !== 'QuantizeLinear'; p = index.producer.get(source)) {
    keep.add(p);
    source = p.inputs[0]!;
  }
  const pull = (value: string): void => {
    const p = index.producer.get(value);
    if (!p || keep.has(p)) return;
    keep.add(p);
    p.inputs.forEach((v) => v && pull(v));
  };
  layer.inputs.slice(1).forEach((v) => v && pull(v));
  for (const n of keep) n.inputs.slice(1).forEach((v) => v && pull(v));
  const sub = emptyGraph(`${label}-alone`, g.opsets['']);
  sub.opsets = { ...g.opsets };
  sub.metadata = { ...g.metadata }; // the QAT grid (slimkit.qat_grid) goes with the layer
  const qIn: Node = { name: 'input_QuantizeLinear', opType: 'QuantizeLinear', domain: '', inputs: ['x', inDq.inputs[1]!, inDq.inputs[2]!], outputs: [source], attributes: {} };
  sub.nodes = [qIn, ...g.nodes.filter((n) => keep.has(n))];
  sub.inputs = [{ name: 'x', dtype: 'float32', shape: dims }];
  sub.outputs = [{ name: dqOut.outputs[0]!, dtype: 'float32' }];
  const used = new Set(sub.nodes.flatMap((n) => n.inputs));
  for (const [name, t] of g.initializers) if (used.has(name)) sub.initializers.set(name, t);
  return sub;
}

/** Quantization levels of a dequantized tensor: round(y / s) + z. */
function levels(y: Float32Array, scale: number, zero: number): Int32Array {
  return Int32Array.from(y, (v) => Math.round(v / scale) + zero);
}

interface LayerCheck {
  layer: string;
  maxLevels: number;
  differing: number;
  count: number;
}

/** Engine (QAT form) vs ONNX Runtime (exported form) on every quantized layer, fed the same activations. */
async function compareLayers(qatGraph: Graph, exported: Graph, input: Tensor<'float32'>): Promise<LayerCheck[]> {
  const layers = quantizedLayers(exported).map(nodeLabel);
  const qatIndex = new GraphIndex(qatGraph);
  const probe = cloneGraph(qatGraph);
  const inputsOf = layers.map((label) => qatGraph.nodes.find((n) => nodeLabel(n) === label)!.inputs[0]!);
  probe.outputs = inputsOf.map((name) => ({ name, dtype: 'float32' as const }));
  const acts = EnginePlan.create(probe, { threads: 1 }).forward(input);
  const checks: LayerCheck[] = [];
  for (const [k, label] of layers.entries()) {
    const x = acts[k]!;
    const engineSub = layerSubgraph(qatGraph, label, [...x.dims]);
    const ortSub = layerSubgraph(exported, label, [...x.dims]);
    const engineOut = EnginePlan.create(engineSub, { threads: 1 }).forward(x)[0]!.data;
    const ortOut = (await runGraph(ortSub, { x }, { threads: 1 }))[ortSub.outputs[0]!.name]!.data as Float32Array;
    const qOut = qatIndex.consumersOf(qatGraph.nodes.find((n) => nodeLabel(n) === label)!.outputs[0]!)[0]!;
    const scale = Number(qatGraph.initializers.get(qOut.inputs[1]!)!.data[0]);
    const zero = Number(qatGraph.initializers.get(qOut.inputs[2]!)!.data[0]);
    const a = levels(engineOut, scale, zero);
    const b = levels(ortOut, scale, zero);
    let maxLevels = 0;
    let differing = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!);
      maxLevels = Math.max(maxLevels, d);
      if (d) differing++;
    }
    checks.push({ layer: label, maxLevels, differing, count: a.length });
  }
  return checks;
}

describe.skipIf(!available || !hasCifar)('QAT graph: engine forward vs ONNX Runtime int8', () => {
  let train: ImageSet;
  let test: ImageSet;
  let ptq: QuantizedResult;
  let qat: QatGraph;
  let trained: Graph;

  beforeAll(async () => {
    train = await loadCifar10('train', { dataDir: CIFAR_DIR, limit: 512 });
    test = await loadCifar10('test', { dataDir: CIFAR_DIR, limit: N });
    const graph = buildZooModel('resnet18-cifar', { width: 0.25, seed: 3 });
    ptq = await quantizeStatic(graph, imageFeeds(sampleImages(train, 256, 0), { inputName: 'input', normalization: CIFAR10_NORMALIZATION, batchSize: 64 }), { ...DEFAULT_STATIC, ...EXACT_ON_HOST });
    qat = toQatGraph(ptq.graph, { float: ptq.float });
    // A few LSQ steps, so weights sit off PTQ's grid and scales have moved.
    const plan = EnginePlan.create(qat.graph, { threads: 2, trainable: qat.trainable, learnableScales: true });
    plan.setOptimizer({ kind: 'adamw', weightDecay: 0 });
    const x = images(train, 0, 64);
    const labels = Int32Array.from(train.labels.subarray(0, 64));
    for (let k = 0; k < 8; k++) await plan.trainStepOn(x, labels, { lr: 2e-4 });
    trained = settleScales(plan.toGraph()).graph;
  });

  it('the untrained QAT graph is PTQ\'s model: it exports to the same integers and scales', () => {
    const exported = exportQat(qat.graph, qat.layout).graph;
    validateGraph(exported);
    // Node for node PTQ's graph, CPU layout included (channel padding, weight zero points).
    const ops = (g: Graph): string[] => g.nodes.map((n) => n.opType).sort();
    expect(ops(exported)).toEqual(ops(ptq.graph));
    expect(qat.layout.weights.length).toBe(ptq.plan.layers.length);
    expect(qat.layout.biases.length).toBe(qat.layout.weights.length);
    const integersOf = (g: Graph): Map<string, Tensor[]> => {
      const index = new GraphIndex(g);
      const out = new Map<string, Tensor[]>();
      for (const n of g.nodes) {
        if (n.opType !== 'Conv' && n.opType !== 'Gemm') continue;
        out.set(nodeLabel(n), n.inputs.slice(1).map((v) => {
          const dq = index.producer.get(v)!;
          return [g.initializers.get(dq.inputs[0]!)!, g.initializers.get(dq.inputs[1]!)!];
        }).flat());
      }
      return out;
    };
    const ours = integersOf(exported);
    const theirs = integersOf(ptq.graph);
    expect([...ours.keys()]).toEqual([...theirs.keys()]);
    let weights = 0;
    let offByOne = 0;
    for (const [label, tensors] of theirs) {
      tensors.forEach((t, k) => {
        const o = ours.get(label)![k]!;
        expect(o.dtype, label).toBe(t.dtype);
        expect(o.dims, label).toEqual(t.dims);
        for (let i = 0; i < t.data.length; i++) {
          const d = Math.abs(Number(o.data[i]) - Number(t.data[i]));
          if (k === 0) {
            // The weight's integers (int8, or uint8 laid out for x64 without VNNI: helpers/int8-host.ts).
            // PTQ divides by the scale; the engine (and so export) multiplies by its reciprocal: a value
            // within float rounding of a half level may land one level over.
            expect(d, label).toBeLessThanOrEqual(1);
            weights++;
            if (d) offByOne++;
          } else {
            expect(d, `${label} ${t.dtype}`).toBe(0);
          }
        }
      });
    }
    expect(offByOne / weights).toBeLessThan(1e-4);
  });

  it('leaves PTQ\'s graph as it was, for either CPU layout (on a CPU without AMX it edited it in place)', async () => {
    for (const cpu of ['generic', 'amx'] as const) {
      const graph = buildZooModel('resnet18-cifar', { width: 0.25, seed: 3 });
      const q = await quantizeStatic(graph, imageFeeds(sampleImages(train, 64, 0), { inputName: 'input', normalization: CIFAR10_NORMALIZATION, batchSize: 64 }), { ...DEFAULT_STATIC, cpu });
      const before = encodeModel(q.graph).model;
      toQatGraph(q.graph, { float: q.float });
      expect(Buffer.from(encodeModel(q.graph).model).equals(Buffer.from(before)), cpu).toBe(true);
    }
  });

  it('refuses a float model the int8 weights were not quantized from (another model of the same architecture)', () => {
    // (A fresh zoo model's BatchNorm is the identity, so its unfolded weights are its folded ones.)
    expect(() => toQatGraph(ptq.graph, { float: buildZooModel('resnet18-cifar', { width: 0.25, seed: 3 }) })).not.toThrow();
    for (const float of [foldBatchNorm(buildZooModel('resnet18-cifar', { width: 0.25, seed: 4 })), buildZooModel('resnet18-cifar', { width: 0.25, seed: 5 })]) {
      expect(() => toQatGraph(ptq.graph, { float, file: 'q.onnx' })).toThrow(/^q\.onnx: layer '[^']+': the float model's weights are not the ones the int8 model was quantized from \(\d+ of \d+ quantize to other integers\)/);
    }
    // Another architecture matches by no layer's name and shape: refused, not trained from the int8 weights
    // in silence (a trial passed a model of twice the width, and the model before BN folding, unnoticed).
    expect(() => toQatGraph(ptq.graph, { float: buildZooModel('resnet18-cifar', { width: 0.5, seed: 3 }), file: 'q.onnx' })).toThrow(/^q\.onnx: layer '[^']+': the float model holds it as float32 \d+×\d+×3×3, where the int8 model has a \d+×\d+×3×3 weight: it is not the model the int8 one was quantized from — pass the float graph quantization returned/);
    const renamed = buildZooModel('resnet18-cifar', { width: 0.25, seed: 3 });
    expect(() => toQatGraph(ptq.graph, { float: { ...renamed, nodes: renamed.nodes.map((n) => ({ ...n, name: `other_${n.name}` })) } })).toThrow(/the float model has no node by that name, where the int8 model has a/);
  });

  it('after training, every quantized layer agrees with ONNX Runtime\'s integer kernels within one level', async () => {
    const exported = exportQat(trained, qat.layout).graph;
    validateGraph(exported);
    // ONNX Runtime really runs integer kernels for every layer, no float fallback.
    const kernels = await ortKernels(encodeModel(exported).model, { threads: 1 });
    expect(kernels.floatOps).toEqual({});
    expect(kernels.ops['QLinearConv']).toBe(20);
    const checks = await compareLayers(trained, exported, images(test, 0, N));
    // Every Conv (the Gemm's output is the float logits, checked end to end below).
    expect(checks.length).toBe(20);
    for (const c of checks) {
      expect(c.maxLevels, c.layer).toBeLessThanOrEqual(1);
      // Off by one level only where the float sum sits at a rounding boundary.
      expect(c.differing / c.count, c.layer).toBeLessThan(0.01);
    }
  });

  it('what was trained is what ships: the same weights bit for bit, biases within half a step', async () => {
    const exported = exportQat(trained, qat.layout).graph;
    // LSQ moved every weight's scales away from PTQ's.
    const moved = qat.layout.weights.filter((w) => {
      const before = ptq.graph.initializers.get(w.scale)!.data as Float32Array;
      const after = trained.initializers.get(w.scale)!.data as Float32Array;
      return before.some((v, i) => Math.abs(after[i]! - v) > 1e-6 * v);
    });
    expect(moved.length).toBe(qat.layout.weights.length);

    // The fake-quantized weights the engine computes from the latent weights, against the integers
    // exported (both read through their DequantizeLinear, in the engine).
    const input = images(test, 0, N);
    const weightValues = qat.layout.weights.map((w) => trained.nodes.find((n) => n.name === w.dequantize)!.outputs[0]!);
    const probe = (g: Graph): Tensor<'float32'>[] => {
      const c = cloneGraph(g);
      c.outputs = [...c.outputs, ...weightValues.map((name) => ({ name, dtype: 'float32' as const }))];
      return EnginePlan.create(c, { threads: 1 }).forward(input);
    };
    const [trainedLogits, ...trainedWeights] = probe(trained);
    // Read in the canonical layout (PTQ's CPU layout re-encodes the same weights: zero point −1, padded channels).
    const [, ...exportedWeights] = probe(toCanonicalLayout(exported).graph);
    trainedWeights.forEach((t, k) => expect(Array.from(exportedWeights[k]!.data), weightValues[k]).toEqual(Array.from(t.data)));
    for (const b of qat.layout.biases) {
      const float = trained.initializers.get(b.name)!.data as Float32Array;
      const layer = exported.nodes.find((n) => nodeLabel(n) === b.layer)!;
      const dq = exported.nodes.find((n) => n.outputs[0] === layer.inputs[2])!;
      const q = exported.initializers.get(dq.inputs[0]!)!.data as Int32Array;
      const scale = exported.initializers.get(dq.inputs[1]!)!.data as Float32Array;
      float.forEach((v, c) => expect(Math.abs(q[c]! * scale[b.perChannel ? c : 0]! - v)).toBeLessThanOrEqual(0.5 * scale[b.perChannel ? c : 0]! * (1 + 1e-6)));
    }

    // End to end through 20 layers, ONNX Runtime's integer requantization makes one-level differences
    // that compound; the logits stay within a few percent of their range and predict the same classes.
    const engine = trainedLogits!.data;
    const ort = (await runGraph(exported, { input }, { threads: 1 }))[exported.outputs[0]!.name]!.data as Float32Array;
    const range = Math.max(...engine) - Math.min(...engine);
    let worst = 0;
    for (let i = 0; i < engine.length; i++) worst = Math.max(worst, Math.abs(engine[i]! - ort[i]!));
    expect(worst / range).toBeLessThan(0.05);
    // Every image whose top-1 margin exceeds twice the largest logit difference keeps its class.
    const ranked = (a: Float32Array, n: number): number[] => [...a.subarray(n * 10, n * 10 + 10)].map((v, c) => [v, c] as const).sort((x, y) => y[0] - x[0]).map(([, c]) => c);
    let clear = 0;
    for (let n = 0; n < N; n++) {
      const [first, second] = ranked(engine, n);
      if (engine[n * 10 + first!]! - engine[n * 10 + second!]! <= 2 * worst) continue;
      clear++;
      expect(ranked(ort, n)[0], `image ${n}`).toBe(first);
    }
    expect(clear).toBeGreaterThan(N / 2);
  });
});

describe.skipIf(!available)('fake quantization on a narrower grid', () => {
  it('a QuantizeLinear given [-64, 64] (reduce-range weights) clamps there, not at int8\'s [-128, 127]', () => {
    // y = x · DQ(Q(w)) with w = -10, -9.9, …, 10 at scale 0.1: the integers -100 … 100.
    const n = 201;
    const g = emptyGraph('grid', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, n] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, n] }];
    g.initializers.set('w', float32([n], Array.from({ length: n }, (_, i) => -10 + i / 10)));
    g.initializers.set('s', float32([], [0.1]));
    g.initializers.set('z', { dtype: 'int8', dims: [], data: Int8Array.of(0) });
    g.nodes = [
      { name: 'q', opType: 'QuantizeLinear', domain: '', inputs: ['w', 's', 'z'], outputs: ['wq'], attributes: {} },
      { name: 'dq', opType: 'DequantizeLinear', domain: '', inputs: ['wq', 's', 'z'], outputs: ['wd'], attributes: {} },
      { name: 'mul', opType: 'Mul', domain: '', inputs: ['x', 'wd'], outputs: ['y'], attributes: {} },
    ];
    const ones = float32([1, n], new Array(n).fill(1));
    const extremes = (options: Parameters<typeof EnginePlan.create>[1]): [number, number] => {
      const y = EnginePlan.create(g, { threads: 1, ...options }).forward(ones)[0]!.data;
      return [Math.min(...y), Math.max(...y)];
    };
    const [lo, hi] = extremes({});
    expect(lo).toBeCloseTo(-10, 5);
    expect(hi).toBeCloseTo(10, 5);
    const [rlo, rhi] = extremes({ quantRanges: new Map([['q', [-64, 64] as const]]) });
    expect(rlo).toBeCloseTo(-6.4, 5);
    expect(rhi).toBeCloseTo(6.4, 5);
    // The way QAT graphs carry it: metadata every plan compiled from the graph (or a copy) reads.
    g.metadata = { 'slimkit.qat_grid': JSON.stringify({ q: [-127, 127] }) };
    const [mlo, mhi] = extremes({});
    expect(mlo).toBeCloseTo(-10, 5);
    g.metadata = { 'slimkit.qat_grid': JSON.stringify({ q: [-50, 30] }) };
    const [nlo, nhi] = extremes({});
    expect(nlo).toBeCloseTo(-5, 5);
    expect(nhi).toBeCloseTo(3, 5);
    expect(mhi).toBeCloseTo(10, 5);
  });
});
