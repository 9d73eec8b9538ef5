import './helpers/engine-env.js';
import { describe, expect, it } from 'vitest';
import { pruneStructured } from '../src/compress/prune/structured.js';
import { pruneUnstructured } from '../src/compress/prune/unstructured.js';
import { nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import { cloneGraph, type Graph } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { untieIdentityWeights } from '../src/passes/index.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { smallCnn } from './helpers/engine-nets.js';
import { fixturePath, maxAbsDiff, torchSidecar } from './helpers/fixtures.js';

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
