import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineFineTuner, finetuneLr, pruneStructuredIteratively, pruneUnstructured } from '../src/compress/prune/index.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { channelMoments } from '../src/runtime/channel-stats.js';
import { buildZooModel } from '../src/zoo/index.js';
import { batches } from '../src/data/batches.js';
import { CIFAR10_NORMALIZATION, type ImageSet } from '../src/data/types.js';
import { nativeAvailable } from '../src/engine/native.js';
import { readModel } from '../src/onnx/io.js';
import { float32, makeTensor } from '../src/onnx/tensor.js';
import { Random } from '../src/util/random.js';
import { fixturePath } from './helpers/fixtures.js';
import { ortOutput } from './prune-fixtures.js';
import type { Graph } from '../src/onnx/graph.js';

/** Random 16×16 images with random labels: enough to check gradients and the training loop's plumbing. */
function syntheticSet(count: number, seed: number): ImageSet {
  const rng = new Random(seed);
  return {
    name: 'synthetic',
    classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
    imageShape: [3, 16, 16],
    pixels: Uint8Array.from({ length: count * 3 * 16 * 16 }, () => rng.nextUint32() & 255),
    labels: Uint16Array.from({ length: count }, () => rng.nextUint32() % 10),
  };
}

/** Mean cross-entropy of the graph on one batch, in ONNX Runtime (float64 accumulation). */
async function ortLoss(graph: Graph, images: Float32Array, dims: number[], labels: Uint16Array): Promise<number> {
  const logits = (await ortOutput(graph, makeTensor('float32', dims, images))).data as Float32Array;
  let loss = 0;
  for (let b = 0; b < labels.length; b++) {
    const row = Array.from(logits.subarray(b * 10, b * 10 + 10));
    const max = Math.max(...row);
    loss += Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max - row[labels[b]!]!;
  }
  return loss / labels.length;
}

describe('fine-tuning defaults', () => {
  it('a BN-folded model fine-tunes at half the learning rate of one with BatchNormalization', () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 0 });
    expect(finetuneLr(graph)).toBe(0.01);
    expect(finetuneLr(foldBatchNorm(graph))).toBe(0.005);
  });
});

describe('channel moments', () => {
  it('equal the mean and variance of each channel computed from the full ORT outputs', async () => {
    const graph = foldBatchNorm(await readModel(fixturePath('torch-tiny-resnet.onnx')));
    const values = graph.nodes.filter((n) => n.opType === 'Conv').slice(0, 3).map((n) => n.outputs[0]!);
    const set = syntheticSet(40, 3);
    const moments = await channelMoments(graph, values, { images: set, normalization: CIFAR10_NORMALIZATION, samples: 40 });
    // The oracle: all 40 images in one run, statistics in a plain loop.
    const [all] = [...batches(set, { batchSize: 40, normalization: CIFAR10_NORMALIZATION, shuffleSeed: 0 })];
    for (const name of values) {
      const exposed = { ...graph, outputs: [{ name, dtype: 'float32' as const }] };
      const t = await ortOutput(exposed, makeTensor('float32', all!.dims, all!.images));
      const [n, ch] = [t.dims[0]!, t.dims[1]!];
      const inner = t.data.length / (n * ch);
      for (let c = 0; c < ch; c++) {
        const xs: number[] = [];
        for (let b = 0; b < n; b++) for (let k = 0; k < inner; k++) xs.push(t.data[(b * ch + c) * inner + k] as number);
        const mean = xs.reduce((a, v) => a + v, 0) / xs.length;
        const variance = xs.reduce((a, v) => a + (v - mean) ** 2, 0) / xs.length;
        expect(moments.get(name)!.mean[c]).toBeCloseTo(mean, 4);
        expect(Math.abs(moments.get(name)!.variance[c]! - variance)).toBeLessThanOrEqual(1e-4 * Math.max(1, variance));
      }
    }
  });
});

describe.skipIf(!nativeAvailable())('pruning with the training engine', () => {
  const set = syntheticSet(64, 11);
  const tuner = engineFineTuner({ data: { train: set, test: set }, batch: 8, threads: 1, normalization: CIFAR10_NORMALIZATION, seed: 0 });

  it('Taylor gradients equal a finite difference of the loss in ONNX Runtime', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const grads = await tuner.gradients(graph, { batches: 1 });
    const [batch] = [...batches(set, { batchSize: 8, normalization: CIFAR10_NORMALIZATION, shuffleSeed: 0, dropLast: true })];
    const name = 'conv1.weight';
    const g = grads.get(name)!;
    const w = graph.initializers.get(name)!;
    expect(g.length).toBe(w.data.length);
    // The three largest gradients (smallest relative error of a finite difference).
    const top = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, 3);
    for (const i of top) {
      const at = async (delta: number): Promise<number> => {
        const data = Float32Array.from(w.data as Float32Array);
        data[i]! += delta;
        const edited = { ...graph, initializers: new Map(graph.initializers).set(name, float32(w.dims, data)) };
        return ortLoss(edited, batch!.images, batch!.dims, batch!.labels);
      };
      const eps = 1e-2;
      const numeric = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      expect(Math.abs(numeric - g[i]!), `element ${i}: engine ${g[i]}, finite difference ${numeric}`).toBeLessThan(0.05 * Math.abs(g[i]!) + 1e-4);
    }
  });

  it('fine-tuning keeps masked weights at zero and pruned structure intact', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const sparse = pruneUnstructured(graph, { sparsity: 0.5 });
    const tuned = await tuner.finetune(sparse.graph, { epochs: 1, masks: sparse.masks, teacher: graph });
    for (const [name, mask] of sparse.masks) {
      const w = tuned.graph.initializers.get(name)!.data as Float32Array;
      const before = sparse.graph.initializers.get(name)!.data as Float32Array;
      let moved = 0;
      mask.forEach((m, i) => {
        if (m === 0) expect(w[i] === 0, `${name}[${i}] = ${w[i]}`).toBe(true); // ±0
        else if (w[i] !== before[i]) moved++;
      });
      expect(moved, name).toBeGreaterThan(0);
    }
    // A BN-folded model trains with BN re-inserted and comes back folded: same ops, masks still zero.
    const foldedSparse = pruneUnstructured(foldBatchNorm(graph), { sparsity: 0.5 });
    const foldedTuned = await tuner.finetune(foldedSparse.graph, { epochs: 1, masks: foldedSparse.masks });
    expect(foldedTuned.graph.nodes.map((n) => n.opType)).toEqual(foldedSparse.graph.nodes.map((n) => n.opType));
    for (const [name, mask] of foldedSparse.masks) {
      const w = foldedTuned.graph.initializers.get(name)!.data as Float32Array;
      mask.forEach((m, i) => m === 0 && expect(w[i] === 0, `${name}[${i}] = ${w[i]}`).toBe(true));
    }
    const r = await pruneStructuredIteratively(graph, { target: { kind: 'macs', value: 0.5 }, roundTo: 1, importance: 'taylor' }, { tuner, steps: 2, epochs: 2 });
    expect(r.steps).toHaveLength(2);
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0);
    const x = makeTensor('float32', [2, 3, 16, 16], new Float32Array(2 * 3 * 16 * 16).fill(0.1));
    expect((await ortOutput(r.graph, x)).dims).toEqual([2, 10]);
    expect(r.macsAfter).toBeLessThanOrEqual(0.5 * r.macsBefore);
  });

  it('with a checkpoint folder, iterative pruning killed in its second fine-tuning resumes there and ends where an uninterrupted run does', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-prune-resume-'));
    try {
      const graph = foldBatchNorm(await readModel(fixturePath('torch-tiny-resnet.onnx')));
      const options = { target: { kind: 'macs' as const, value: 0.5 }, roundTo: 1 };
      const tunerWith = (checkpointDir: string | undefined, onProgress?: (p: { epoch: number; step: number }) => void, resumed?: number[]) =>
        engineFineTuner({ data: { train: set, test: set }, batch: 8, threads: 1, normalization: CIFAR10_NORMALIZATION, seed: 0, ...(checkpointDir ? { checkpointDir } : {}), ...(onProgress ? { onProgress } : {}), ...(resumed ? { onResumed: (e) => resumed.push(e) } : {}) });
      // 4 epochs over 2 cuts: 2 fine-tuning epochs after each.
      const whole = await pruneStructuredIteratively(graph, options, { tuner: tunerWith(undefined), steps: 2, epochs: 4 });

      // The "crash": the second fine-tuning throws in its second epoch, after one checkpointed epoch.
      let calls = 0;
      const crash = (p: { epoch: number; step: number }): void => {
        if (p.epoch === 0 && p.step === 1) calls++;
        if (calls === 2 && p.epoch === 1) throw new Error('killed');
      };
      await expect(pruneStructuredIteratively(graph, options, { tuner: tunerWith(dir, crash), steps: 2, epochs: 4 })).rejects.toThrow('killed');
      expect(readdirSync(dir).sort()).toEqual(['finetune-1', 'finetune-2']);
      const resumed: number[] = [];
      const again = await pruneStructuredIteratively(graph, options, { tuner: tunerWith(dir, undefined, resumed), steps: 2, epochs: 4 });
      // The first fine-tuning is read back whole, the second continues after its first epoch.
      expect(resumed).toEqual([2, 1]);
      for (const [name, t] of whole.graph.initializers) expect(again.graph.initializers.get(name)!.data, name).toEqual(t.data);
      expect(again.testAccuracy).toBe(whole.testAccuracy);
      // Checkpoints of other settings (here: fewer epochs) are the stage's scratch: discarded, not a dead end.
      const discarded: string[] = [];
      const other = engineFineTuner({ data: { train: set, test: set }, batch: 8, threads: 1, normalization: CIFAR10_NORMALIZATION, seed: 0, checkpointDir: dir, onDiscarded: (why) => discarded.push(why) });
      const shorter = await pruneStructuredIteratively(graph, options, { tuner: other, steps: 2, epochs: 2 });
      expect(discarded).toHaveLength(2);
      expect(discarded[0]).toMatch(/other settings \(--epochs: 2 then, 1 now/);
      expect(shorter.steps).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
