import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import {
  crossEntropyGrad, epochsForStep, findWeights, gradualSparsity, pruneStructuredIteratively, pruneUnstructured,
  pruneUnstructuredGradually, sizeReport, sparseTensorBytes, type FineTuner,
} from '../src/compress/prune/index.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel, readModel } from '../src/onnx/io.js';
import { float32, makeTensor } from '../src/onnx/tensor.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { buildZooModel } from '../src/zoo/index.js';
import { fixturePath } from './helpers/fixtures.js';
import { Net, ortOutput, randomImages } from './prune-fixtures.js';

const abs = (t: { data: unknown }): number[] => Array.from(t.data as Float32Array, Math.abs);
const zeros = (t: { data: unknown }): number => Array.from(t.data as Float32Array).filter((v) => v === 0).length;

describe('unstructured magnitude pruning', () => {
  const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 3 });

  it('finds every conv and linear weight through the channel rules', () => {
    const weights = findWeights(graph);
    const convs = graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
    expect(weights.map((w) => w.name).sort()).toEqual(convs.map((n) => n.inputs[1]!).sort());
    expect(weights.every((w) => w.inputAxis === 1)).toBe(true); // Conv W [O, I, k, k]; Gemm B (transB) [N, K]
  });

  it('2:4 on a grouped conv groups along its per-group input axis; a depthwise conv is skipped, with the reason', () => {
    const n = new Net(['batch', 4, 8, 8]);
    const grouped = n.conv('input', 4, 16, { k: 1 });
    const g = n.conv(grouped, 16, 8, { group: 2 }); // W [8, 8, 3, 3]: 8 inputs per group
    const dw = n.conv(g, 8, 8, { group: 8 });
    const net = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', dw)), 8, 4));
    const r = pruneUnstructured(net, { nm: { n: 2, m: 4 } });
    const [groupedW, dwW] = [net.nodes[1]!.inputs[1]!, net.nodes[2]!.inputs[1]!];
    expect(r.skipped).toEqual([{ name: dwW, node: net.nodes[2]!.name, reason: 'depthwise conv: one input channel per filter, nothing to group along' }]);
    const after = r.graph.initializers.get(groupedW)!.data as Float32Array;
    // Every run of 4 along axis 1 (within a group) at each output and kernel position keeps exactly 2.
    for (let o = 0; o < 8; o++) {
      for (let k = 0; k < 9; k++) {
        for (let b = 0; b < 8; b += 4) expect([0, 1, 2, 3].filter((j) => after[(o * 8 + b + j) * 9 + k] !== 0).length).toBe(2);
      }
    }
  });

  it('layer scope: every tensor loses exactly round(s·n) weights, the smallest ones', () => {
    const r = pruneUnstructured(graph, { sparsity: 0.6 });
    for (const t of r.tensors) {
      const after = r.graph.initializers.get(t.name)!;
      expect(zeros(after), t.name).toBe(Math.round(0.6 * t.elements));
      const before = abs(graph.initializers.get(t.name)!);
      const kept = before.filter((_, i) => (after.data as Float32Array)[i] !== 0);
      const dropped = before.filter((_, i) => (after.data as Float32Array)[i] === 0);
      expect(Math.max(...dropped)).toBeLessThanOrEqual(Math.min(...kept));
    }
    expect(r.sparsity).toBeCloseTo(0.6, 3);
  });

  it('--keep takes a node or its PyTorch module name; one that names neither is refused', async () => {
    const torch = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const byNode = pruneUnstructured(torch, { sparsity: 0.5, keep: ['/stem/stem.0/Conv'] });
    const byModule = pruneUnstructured(torch, { sparsity: 0.5, keep: ['stem.0'] });
    expect(byModule.skipped).toEqual(byNode.skipped);
    expect(byModule.skipped.map((s) => s.node)).toEqual(['/stem/stem.0/Conv']);
    // The module holding it too (`stem` for stem.0), as --freeze takes it; a typo is named.
    expect(pruneUnstructured(torch, { sparsity: 0.5, keep: ['stem'] }).skipped).toEqual(byNode.skipped);
    expect(() => pruneUnstructured(torch, { sparsity: 0.5, keep: ['stme'] })).toThrow(/^no node or module named 'stme' — did you mean 'stem'\? give a node name/);
    expect(() => pruneUnstructured(torch, { sparsity: 0.5, keep: ['stem.9'] })).toThrow(/no node or module named 'stem\.9'/);
  });

  it('global scope: one threshold across the model, so layers end up at different sparsities', () => {
    const r = pruneUnstructured(graph, { sparsity: 0.5, scope: 'global' });
    const total = r.tensors.reduce((a, t) => a + t.elements, 0);
    expect(r.tensors.reduce((a, t) => a + t.zerosAfter, 0)).toBe(Math.round(0.5 * total));
    let maxDropped = 0;
    let minKept = Infinity;
    for (const t of r.tensors) {
      const before = abs(graph.initializers.get(t.name)!);
      const after = r.graph.initializers.get(t.name)!.data as Float32Array;
      before.forEach((v, i) => (after[i] === 0 ? (maxDropped = Math.max(maxDropped, v)) : (minKept = Math.min(minKept, v))));
    }
    expect(maxDropped).toBeLessThanOrEqual(minKept);
    const per = r.tensors.map((t) => t.zerosAfter / t.elements);
    expect(Math.max(...per) - Math.min(...per)).toBeGreaterThan(0.1);
  });

  it('2:4 keeps the two largest of every four input channels and skips tensors it cannot group', () => {
    const r = pruneUnstructured(graph, { nm: { n: 2, m: 4 } });
    // The first conv reads 3 input channels: no whole groups of 4.
    expect(r.skipped).toEqual([{ name: graph.nodes[0]!.inputs[1], node: graph.nodes[0]!.name, reason: 'input axis of 3 is not a multiple of 4' }]);
    for (const t of r.tensors) {
      const w = graph.initializers.get(t.name)!;
      const after = r.graph.initializers.get(t.name)!.data as Float32Array;
      const [o, i] = w.dims;
      const inner = w.dims.slice(2).reduce((a, b) => a * b, 1);
      for (let a = 0; a < o!; a++) {
        for (let j = 0; j < inner; j++) {
          for (let b = 0; b < i!; b += 4) {
            const idx = [0, 1, 2, 3].map((k) => (a * i! + b + k) * inner + j);
            const kept = idx.filter((x) => after[x] !== 0);
            expect(kept.length).toBe(2);
            const mags = idx.map((x) => Math.abs((w.data as Float32Array)[x]!)).sort((x, y) => y - x);
            expect(kept.map((x) => Math.abs(after[x]!)).sort((x, y) => y - x)).toEqual(mags.slice(0, 2));
          }
        }
      }
    }
    expect(r.sparsity).toBe(0.5);
  });

  it('ORT runs the sparse model: same output shape; sparsity 0 is bit-identical', async () => {
    const torch = await readModel(fixturePath('torch-tiny-mobilenet.onnx'));
    const x = randomImages([2, 3, 16, 16]);
    const base = await ortOutput(torch, x);
    const same = pruneUnstructured(torch, { sparsity: 0 });
    expect(Array.from((await ortOutput(same.graph, x)).data as Float32Array)).toEqual(Array.from(base.data as Float32Array));
    const sparse = pruneUnstructured(torch, { sparsity: 0.7, scope: 'global' });
    const out = await ortOutput(sparse.graph, x);
    expect(out.dims).toEqual(base.dims);
    expect(inferShapes(sparse.graph).totalMacs).toBe(inferShapes(torch).totalMacs);
  });

  it('rejects bad settings with a usage error', () => {
    expect(() => pruneUnstructured(graph, { sparsity: 1 })).toThrow(/sparsity 1 is out of range/);
    expect(() => pruneUnstructured(graph, { nm: { n: 4, m: 4 } })).toThrow(/N:M pattern 4:4 is invalid/);
  });
});

describe('honest sizes', () => {
  it('sparse storage picks the cheapest of dense, bitmap and N:M, per tensor', () => {
    const dense = float32([16], Array.from({ length: 16 }, (_, i) => i + 1));
    expect(sparseTensorBytes(dense)).toBe(64);
    // 12 of 16 zero: bitmap 2 bytes + 4 floats.
    const mostlyZero = float32([16], [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]);
    expect(sparseTensorBytes(mostlyZero)).toBe(2 + 16);
    // 2:4 with 8 of 16 kept: 32 bytes of values + 8 × 2-bit positions = 2 bytes, vs bitmap 2 + 32.
    const half = float32([16], [1, 0, 2, 0, 0, 3, 0, 4, 5, 6, 0, 0, 0, 0, 7, 8]);
    expect(sparseTensorBytes(half)).toBe(34);
    expect(sparseTensorBytes(half, { n: 2, m: 4 })).toBe(34);
    const f16 = makeTensor('float16', [8], Uint16Array.from([0x3c00, 0, 0x8000, 0, 0, 0, 0, 0]));
    expect(sparseTensorBytes(f16)).toBe(1 + 2);
  });

  it('dense bytes stay, gzip and the sparse estimate shrink with sparsity', () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.25, seed: 1 });
    const before = sizeReport(graph);
    const pruned = pruneUnstructured(graph, { sparsity: 0.8, scope: 'global' });
    const after = sizeReport(pruned.graph);
    const bytes = encodeModel(pruned.graph).model;
    expect(after.denseBytes).toBe(bytes.byteLength);
    expect(Math.abs(after.denseBytes - before.denseBytes)).toBeLessThan(64);
    expect(after.gzipBytes).toBe(gzipSync(bytes, { level: 9 }).byteLength);
    expect(after.gzipBytes).toBeLessThan(0.5 * before.gzipBytes);
    expect(after.sparseBytesEstimate).toBeLessThan(0.4 * before.denseBytes);
    expect(after.zeroFraction).toBeGreaterThan(0.75);
  });
});

/** A FineTuner that records what it was asked and nudges no weights: tests the loops, not training. */
function recordingTuner(): FineTuner & { calls: { epochs: number; masks: number; teacher: boolean }[] } {
  const calls: { epochs: number; masks: number; teacher: boolean }[] = [];
  return {
    calls,
    async finetune(graph, o) {
      calls.push({ epochs: o.epochs, masks: o.masks?.size ?? 0, teacher: o.teacher !== undefined });
      return { graph, testAccuracy: 0.5, seconds: 0 };
    },
    async gradients(graph) {
      return new Map([...graph.initializers].map(([k, t]) => [k, new Float32Array(t.data.length).fill(1)]));
    },
  };
}

describe('pruning with training in the loop', () => {
  it('spreads epochs over steps and sparsity along a cubic ramp', () => {
    expect([1, 2, 3].map((i) => epochsForStep(10, 3, i))).toEqual([3, 3, 4]);
    const want = [0.8 * (1 - (2 / 3) ** 3), 0.8 * (1 - (1 / 3) ** 3), 0.8, 0.8];
    [1, 2, 3, 4].forEach((e, i) => expect(gradualSparsity(0.8, e, 4)).toBeCloseTo(want[i]!, 12));
  });

  it('iterative structured pruning cuts a share of every group at each step, ending at the one-shot widths, and fine-tunes after each', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const tuner = recordingTuner();
    const r = await pruneStructuredIteratively(graph, { target: { kind: 'macs', value: 0.5 }, roundTo: 1, importance: 'taylor' }, { tuner, steps: 2, epochs: 4, distill: true });
    expect(tuner.calls).toEqual([{ epochs: 2, masks: 0, teacher: true }, { epochs: 2, masks: 0, teacher: true }]);
    // The first step cuts part of the way; the last meets the target.
    expect(r.steps[0]!.macs).toBeLessThan(r.macsBefore);
    expect(r.steps[0]!.macs).toBeGreaterThan(r.steps[1]!.macs);
    expect(r.steps[1]!.macs).toBeLessThanOrEqual(0.5 * r.macsBefore);
    expect(r.macsAfter).toBe(inferShapes(r.graph).totalMacs);
    expect(r.testAccuracy).toBe(0.5);
  });

  it('a per-layer ratio means the same in 3 steps as in 1 (the steps end at the one-shot widths)', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const keptBy = async (steps: number): Promise<number> => {
      const r = await pruneStructuredIteratively(graph, { target: { kind: 'ratio', value: 0.25 }, roundTo: 1, layerRatios: { '/conv1/Conv': 0.5 } }, { tuner: recordingTuner(), steps, epochs: 0 });
      return r.graph.initializers.get(r.graph.nodes.find((n) => n.name === '/conv1/Conv')!.inputs[1]!)!.dims[0]!;
    };
    expect(await keptBy(1)).toBe(4); // 8 filters, half removed
    expect(await keptBy(3)).toBe(4); // compounding would leave 1 (8 → 4 → 2 → 1)
  });

  it('gradual unstructured pruning hands the engine masks that match the zeros', async () => {
    const graph: Graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 5 });
    const tuner = recordingTuner();
    const r = await pruneUnstructuredGradually(graph, { sparsity: 0.5 }, { tuner, epochs: 3 });
    expect(tuner.calls.map((c) => c.epochs)).toEqual([1, 1, 1]);
    expect(r.steps.map((s) => s.sparsity)).toEqual([1, 2, 3].map((e) => gradualSparsity(0.5, e, 3)));
    for (const [name, mask] of r.masks) {
      const w = r.graph.initializers.get(name)!.data as Float32Array;
      mask.forEach((m, i) => m === 0 && expect(w[i]).toBe(0));
    }
    expect(r.sparsity).toBeCloseTo(0.5, 3);
  });

  it('the cross-entropy gradient matches a finite difference', () => {
    const logits = Float32Array.from([0.5, -1, 2, 0.1, 0.3, -0.2]);
    const labels = [2, 0];
    const loss = (l: Float32Array): number => {
      let s = 0;
      for (let b = 0; b < 2; b++) {
        const row = Array.from(l.subarray(b * 3, b * 3 + 3));
        s += Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[labels[b]!]!;
      }
      return s / 2;
    };
    const g = crossEntropyGrad(logits, labels, false);
    for (let i = 0; i < 6; i++) {
      const [up, down] = [Float32Array.from(logits), Float32Array.from(logits)];
      up[i]! += 1e-3;
      down[i]! -= 1e-3;
      expect(g[i]).toBeCloseTo((loss(up) - loss(down)) / 2e-3, 4);
    }
  });
});
