import './helpers/engine-env.js';
import { describe, expect, it } from 'vitest';
import { pruneStructured } from '../src/compress/prune/structured.js';
import { pruneUnstructured } from '../src/compress/prune/unstructured.js';
import { nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import { cloneGraph, type Graph } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { foldBatchNorm, untieIdentityWeights } from '../src/passes/index.js';
import { hasNormalization, unnormalizedNote, withTrainingBatchNorm } from '../src/engine/reinsert-batchnorm.js';
import { Net } from './prune-fixtures.js';
import { compilePlan } from '../src/engine/compile.js';
import { SlimError } from '../src/errors.js';
import { quantizeStatic, DEFAULT_STATIC } from '../src/compress/quantize/index.js';
import { toQatGraph, withLiveBatchNorm } from '../src/compress/qat/index.js';
import { emptyGraph } from '../src/onnx/graph.js';
import { int64 } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { smallCnn } from './helpers/engine-nets.js';
import { foldedNote } from '../src/cli/train-options.js';
import { fixturePath, maxAbsDiff, torchSidecar } from './helpers/fixtures.js';
import { modelStats } from '../src/runtime/stats.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { channelMoments } from '../src/runtime/channel-stats.js';
import { normalizationOf } from '../src/zoo/metadata.js';

/** Default-initialized TinyResNet exported with BN kept: torch.onnx merged every γ = 1, β = 0, mean and var. */
const FRESH = 'torch-tiny-resnet-fresh.onnx';

/**
 * What torch.onnx's initializer deduplication does, written independently of the pass: every
 * initializer equal (dtype, dims, bytes) to an earlier one is deleted and re-made as Identity(earlier).
 */
function dedupLikeTorch(graph: Graph): Graph {
  const g = cloneGraph(graph);
  const seen = new Map<string, string>();
  const identities = [];
  for (const [name, t] of graph.initializers) {
    const key = `${t.dtype}|${t.dims.join(',')}|${Array.from(t.data as Float32Array).join(',')}`;
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, name);
      continue;
    }
    g.initializers.delete(name);
    identities.push({ name: `Identity_${identities.length}`, opType: 'Identity', domain: '', inputs: [first], outputs: [name], attributes: {} });
  }
  g.nodes = [...identities, ...g.nodes];
  return g;
}

function identitiesOfInitializers(graph: Graph): number {
  return graph.nodes.filter((n) => n.opType === 'Identity' && graph.initializers.has(n.inputs[0]!)).length;
}

describe('untie-weights', () => {
  it("gives each parameter torch.onnx merged its own initializer, under the parameter's name, with the same function", async () => {
    const graph = await readModel(fixturePath(FRESH));
    // The exporter's pattern, as it ships: one tensor of ones stands for γ and running variance alike.
    expect(identitiesOfInitializers(graph)).toBeGreaterThan(10);
    expect(graph.initializers.has('bn3.running_var')).toBe(false);
    const untied = untieIdentityWeights(graph);
    expect(identitiesOfInitializers(untied)).toBe(0);
    for (const bn of untied.nodes.filter((n) => n.opType === 'BatchNormalization')) {
      for (const v of bn.inputs.slice(1)) expect(untied.initializers.has(v), v).toBe(true);
    }
    expect([...untied.initializers.get('bn3.running_var')!.data]).toEqual(new Array(16).fill(1));
    const { input, output } = torchSidecar(FRESH);
    const out = await runGraph(untied, { [untied.inputs[0]!.name]: input });
    expect(maxAbsDiff(out[untied.outputs[0]!.name]!, output)).toBeLessThan(1e-4);
    // Nothing to untie: the graph comes back as it was.
    const plain = smallCnn({ widths: [4, 8, 8] });
    expect(untieIdentityWeights(plain)).toBe(plain);
  });

  it('a parameter torch.onnx reads through a reshape (PReLU slopes without constant folding) is that parameter, shaped', async () => {
    // nn.PReLU(8) exported with do_constant_folding=False: PRelu(x, Unsqueeze(a1.weight, [1, 2])). Before,
    // the slope was a computed value: not counted, not trained, not freezable, and a pruning boundary.
    const file = 'torch-tiny-prelunet.onnx';
    const graph = await readModel(fixturePath(file));
    expect(graph.nodes.filter((n) => n.opType === 'Unsqueeze')).toHaveLength(2);
    const untied = untieIdentityWeights(graph);
    expect(untied.nodes.map((n) => n.opType)).not.toContain('Unsqueeze');
    expect(untied.nodes.map((n) => n.opType)).not.toContain('Constant'); // the axes went with their Unsqueeze
    expect(untied.initializers.get('a1.weight')!.dims).toEqual([8, 1, 1]);
    expect(untied.nodes.find((n) => n.opType === 'PRelu')!.inputs[1]).toBe('a1.weight');
    const { input, output } = torchSidecar(file);
    expect(maxAbsDiff((await runGraph(untied, { input }))['logits']!, output)).toBeLessThan(1e-5);
    // Counted as PyTorch counts it (1,610), read as it ships.
    expect(modelStats(graph, inferShapes(graph)).params).toBe(1610);
    // Trained, and kept out of weight decay as the per-channel vector it is.
    const slope = compilePlan(graph).tensors.find((t) => t.name === 'a1.weight')!;
    expect([slope.role, slope.decay]).toEqual([0, false]);
    // Pruned through: no boundary at the slope.
    const pruned = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1 });
    expect(pruned.boundaries).toEqual([]);
    expect(pruned.graph.initializers.get('a1.weight')!.dims).toEqual([4, 1, 1]);
  });

  it('BN re-insertion for training reaches every Conv of a fresh folded export (its zero biases are merged)', async () => {
    // torch.onnx's default export folds BN; a fresh model's folded biases are all zero, so they are merged.
    const folded = dedupLikeTorch(foldBatchNorm(untieIdentityWeights(await readModel(fixturePath(FRESH)))));
    const convs = folded.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.filter((c) => c.inputs[2] && !folded.initializers.has(c.inputs[2])).length).toBeGreaterThan(0);
    const rng = new Random(4);
    const images = { name: 'noise', classes: ['a', 'b'], imageShape: [3, 16, 16] as [number, number, number], pixels: Uint8Array.from({ length: 16 * 3 * 16 * 16 }, () => rng.int(256)), labels: new Uint16Array(16) };
    const fresh = await withTrainingBatchNorm(folded, images, { samples: 16, threads: 1 });
    expect(fresh.inserted).toBe(convs.length);
    // Untrained (every folded bias exactly 0): BN goes back as PyTorch initializes it, γ = 1 and β = 0 —
    // kept as the same function, a trial's fresh export barely trained (loss 2.303 → 2.277 in 4 epochs;
    // 1.84 this way, 1.87 in PyTorch).
    expect(fresh.untrained).toBe(true);
    const affine = (g: Graph) => g.nodes.filter((n) => n.opType === 'BatchNormalization').flatMap((n) => [...(g.initializers.get(n.inputs[1]!)!.data as Float32Array), ...(g.initializers.get(n.inputs[2]!)!.data as Float32Array)]);
    expect(new Set(affine(fresh.graph))).toEqual(new Set([1, 0]));
    // Its running statistics are each layer's input with the BNs before it in place: in eval mode every BN
    // gives mean 0 and variance 1 on the images it was measured on, as train mode does. (Measured on the
    // export, later BNs normalized normalized values again: a trial's fresh MobileNet scored a loss of 2.7e19.)
    const bnOutputs = fresh.graph.nodes.filter((n) => n.opType === 'BatchNormalization').map((n) => n.outputs[0]!);
    const normalized = await channelMoments(fresh.graph, bnOutputs, { images, normalization: normalizationOf(folded), samples: 16, threads: 1 });
    for (const name of bnOutputs) {
      const m = normalized.get(name)!;
      for (let c = 0; c < m.mean.length; c++) {
        expect(Math.abs(m.mean[c]!), `${name}[${c}]`).toBeLessThan(1e-3);
        expect(m.variance[c]!, `${name}[${c}]`).toBeGreaterThan(0.95);
        expect(m.variance[c]!, `${name}[${c}]`).toBeLessThan(1.001);
      }
    }
    // A trained export keeps its function: γ and β from the measured statistics.
    const trained = await withTrainingBatchNorm(foldBatchNorm(await readModel(fixturePath('torch-tiny-resnet.onnx'))), images, { samples: 16, threads: 1 });
    expect(trained.untrained).toBeUndefined();
    expect(affine(trained.graph).filter((v) => v !== 0 && v !== 1).length).toBeGreaterThan(0);
    // Squeeze-excitation's 1×1 convs on pooled features get none: BN there would normalize over the batch alone.
    const mobilenet = foldBatchNorm(await readModel(fixturePath('torch-tiny-mobilenet.onnx')));
    const se = await withTrainingBatchNorm(mobilenet, images, { samples: 16, threads: 1 });
    const bnInputs = new Set(se.graph.nodes.filter((n) => n.opType === 'BatchNormalization').map((n) => n.inputs[0]));
    for (const conv of se.graph.nodes.filter((n) => n.opType === 'Conv')) expect(bnInputs.has(conv.outputs[0]), conv.name).toBe(!conv.name.includes('/se_'));
    expect(se.inserted).toBe(mobilenet.nodes.filter((n) => n.opType === 'Conv').length - 2);
    // A backbone's convs on 1×1 maps (a ResNet's last stage at 32×32, strided down) had BN: they get it back.
    const strided = new Net(['batch', 3, 16, 16]);
    let x = 'input';
    for (const [cin, cout] of [[3, 4], [4, 4], [4, 8], [8, 8]] as const) x = strided.op('Relu', strided.conv(x, cin, cout, { stride: 2 }));
    const last = strided.op('Relu', strided.conv(x, 8, 8));
    const stridedGraph = strided.output(strided.gemm(strided.op('Flatten', strided.op('GlobalAveragePool', last)), 8, 2));
    expect((await withTrainingBatchNorm(stridedGraph, images, { samples: 16, threads: 1 })).inserted).toBe(5);
    // A model that normalizes otherwise (ConvNeXt's LayerNorms survive BN folding) trains as it is.
    const convnext = await readModel(fixturePath('torch-tiny-convnext.onnx'));
    const kept = await withTrainingBatchNorm(convnext, images, { samples: 16, threads: 1 });
    // Its downsampling Conv feeds the next Conv and an Add, not an activation: nothing to say about BN.
    expect([kept.inserted, kept.unnormalized]).toEqual([0, 0]);
    expect(kept.graph.nodes.filter((n) => n.opType === 'BatchNormalization')).toEqual([]);
    // A GroupNorm model whose Convs all feed a GroupNorm is what it was; one with Convs feeding none (a
    // mixed BN + GroupNorm export, its BN folded) cannot be given its BN back, and that is said.
    const gn = await withTrainingBatchNorm(await readModel(fixturePath('torch-tiny-gnnet.onnx')), images, { samples: 16, threads: 1 });
    expect([gn.inserted, gn.unnormalized]).toEqual([0, 0]);
    expect(unnormalizedNote(gn, gn.graph)).toBeUndefined();
    const mixed = new Net(['batch', 3, 16, 16]);
    const plain = mixed.op('Relu', mixed.conv('input', 3, 8));
    const grouped = mixed.op('InstanceNormalization', mixed.reshape(mixed.conv(plain, 8, 8), [0, 2, -1]), mixed.constant(float32([2], [1, 1])), mixed.constant(float32([2], [0, 0])));
    const mixedGraph = mixed.output(mixed.gemm(mixed.op('Flatten', mixed.op('GlobalAveragePool', mixed.reshape(grouped, [0, 8, 16, 16]))), 8, 2));
    const m = await withTrainingBatchNorm(mixedGraph, images, { samples: 16, threads: 1 });
    expect([m.inserted, m.unnormalized]).toEqual([0, 1]);
    // What `wrote` says after train and distill: folded only where there was BN to fold.
    const bnNet = smallCnn({ seed: 1, widths: [4, 8, 8] });
    expect(foldedNote(bnNet, foldBatchNorm(bnNet), true)).toBe(' (BatchNormalization folded)');
    expect(foldedNote(bnNet, bnNet, true)).toBe(' (BatchNormalization folded where a Conv or Gemm precedes it)');
    expect(foldedNote(bnNet, bnNet, false)).toBe('');
    expect(foldedNote(gn.graph, gn.graph, true)).toBe('');
    expect(unnormalizedNote(m, mixedGraph)).toMatch(/^note: the model normalizes with GroupNorm or LayerNorm, so no BatchNormalization is re-inserted for training; 1 of its 2 Conv\(s\) go straight into an activation, with no norm between \(where a folded BN leaves a Conv; one before a residual Add may have lost its BN too\) — .*TrainingMode\.PRESERVE/);
    // Below opset 17 the LayerNorm is written out: a value centred on its own mean marks it.
    for (const centred of [true, false]) {
      const n = new Net(['batch', 3, 16, 16]);
      const x = n.conv('input', 3, 8);
      const mean = n.node('ReduceMean', [x], { axes: { type: 'ints', value: [1] } })[0]!;
      const y = centred ? n.op('Sub', x, mean) : n.op('Mul', x, mean);
      const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 8, 2));
      expect(hasNormalization(graph), `centred ${centred}`).toBe(centred);
      expect((await withTrainingBatchNorm(graph, images, { samples: 16, threads: 1 })).inserted).toBe(centred ? 0 : 1);
    }
  });

  it('QAT with live BatchNorm (--bn-epochs) finds the γ and statistics of a fresh export', async () => {
    const g = await readModel(fixturePath(FRESH));
    const rng = new Random(1);
    const feeds = [0, 1].map(() => ({ [g.inputs[0]!.name]: float32([8, 3, 16, 16], Array.from({ length: 8 * 3 * 16 * 16 }, () => rng.normal())) }));
    const ptq = await quantizeStatic(g, feeds, { ...DEFAULT_STATIC, biasCorrection: false });
    const live = withLiveBatchNorm(toQatGraph(ptq.graph, { float: ptq.float }), g);
    expect(live.batchNorms.length).toBe(5);
  });

  it('structured pruning slices every layer of a fresh export: no parameter is a boundary', async () => {
    const graph = await readModel(fixturePath(FRESH));
    const result = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1 });
    expect(result.boundaries.filter((b) => b.reason.includes('computed'))).toEqual([]);
    expect(result.groups.every((g) => g.channelsAfter < g.channelsBefore)).toBe(true);
  });

  it('unstructured pruning masks every layer, also one whose weights torch merged into another', () => {
    // conv2 starts equal to conv1 (as zero-initialized layers do), so the exporter keeps one tensor for both.
    const g = smallCnn({ widths: [8, 8, 8] });
    g.initializers.set('conv2.weight', g.initializers.get('conv1.weight')!);
    const merged = dedupLikeTorch(g);
    expect(merged.initializers.has('conv2.weight')).toBe(false);
    const result = pruneUnstructured(merged, { sparsity: 0.5 });
    expect(identitiesOfInitializers(result.graph)).toBe(0);
    for (const name of ['conv0.weight', 'conv1.weight', 'conv2.weight']) {
      const w = result.graph.initializers.get(name)!.data as Float32Array;
      expect(w.filter((v) => v === 0).length / w.length, name).toBeCloseTo(0.5, 1);
    }
  });
});

function randomImages(n: number, seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32([n, 3, 32, 32], Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()));
}

describe('Slice lowering', () => {
  it('refuses a negative step with end INT64_MAX: ONNX Runtime and the spec read it differently', () => {
    const g = emptyGraph('flip', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 3, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.initializers = new Map([['s', int64([1], [-1])], ['e', int64([1], [2 ** 63 - 1])], ['a', int64([1], [3])], ['st', int64([1], [-1])]]);
    g.nodes = [{ name: 'flip', opType: 'Slice', domain: '', inputs: ['x', 's', 'e', 'a', 'st'], outputs: ['y'], attributes: {} }];
    expect(() => compilePlan(g)).toThrow(SlimError);
    expect(() => compilePlan(g)).toThrow(/re-export with end INT64_MIN/);
    g.initializers.set('e', int64([1], [-(2 ** 63)]));
    expect(() => compilePlan(g)).not.toThrow();
  });
});

describe.skipIf(!nativeAvailable())('training a model torch.onnx deduplicated', () => {
  it('trains exactly as the model before deduplication: every γ, β and running statistic its own', async () => {
    const original = smallCnn({ seed: 2, widths: [8, 8, 8] });
    const merged = dedupLikeTorch(original);
    // γ and the running variances of all three BNs are one tensor of ones in the merged model.
    expect(merged.initializers.size).toBeLessThan(original.initializers.size - 8);
    const run = async (graph: Graph): Promise<Graph> => {
      const plan = EnginePlan.create(graph, { threads: 1 });
      plan.setOptimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 5e-4 });
      const x = randomImages(16, 3);
      const labels = Int32Array.from({ length: 16 }, (_, j) => j % 10);
      for (let k = 0; k < 3; k++) await plan.trainStepOn(x, labels, { lr: 0.05 });
      return plan.toGraph();
    };
    const [a, b] = [await run(original), await run(merged)];
    for (const [name, t] of a.initializers) {
      const other = b.initializers.get(name);
      expect(other, name).toBeDefined();
      expect(maxAbsDiff(t, other!), name).toBeLessThan(1e-6);
    }
    // The training moved every BN on its own: no two γ, and no γ and running variance, are equal any more.
    const bn = a.nodes.filter((n) => n.opType === 'BatchNormalization');
    const gammas = bn.map((n) => Array.from(b.initializers.get(n.inputs[1]!)!.data as Float32Array).join(','));
    expect(new Set(gammas).size).toBe(bn.length);
    for (const n of bn) expect(maxAbsDiff(b.initializers.get(n.inputs[1]!)!, b.initializers.get(n.inputs[4]!)!)).toBeGreaterThan(1e-4);
  });
});
