/**
 * The quality tools: cross-layer equalization (function kept, ranges equal), bias correction (mean
 * shift removed, ORT as the oracle), the SQNR debugger, per-layer sensitivity (a planted weak layer
 * ranks first) and the mixed-precision search.
 */
import { describe, expect, it } from 'vitest';
import { reportMarkdown } from '../src/compress/quantize/report.js';
import { fewCalibrationImagesNote } from '../src/cli/commands/quantize-static.js';
import { quantizeDynamic } from '../src/compress/quantize/dynamic.js';
import { cloneGraph, emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { openSession } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';
import {
  activationErrors,
  calibratePlan,
  correctBiases,
  DEFAULT_STATIC,
  dequantizeArray,
  equalizeCrossLayer,
  layerSensitivity,
  planQuantization,
  prepareFloatGraph,
  quantizeStatic,
  quantizeWeight,
  rankBySensitivity,
  meetTopOneBudget,
  searchMixedPrecision,
  weightErrors,
  type Feeds,
} from '../src/compress/quantize/index.js';
import { EXACT_ON_HOST } from './helpers/int8-host.js';

const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node => ({ name, opType, domain: '', inputs, outputs, attributes });

async function run(g: Graph, feed: Feeds, outputs?: string[]): Promise<Record<string, Tensor>> {
  const s = await openSession(encodeModel(g).model, { threads: 1 });
  try {
    return await s.run(feed, outputs ? { outputs } : {});
  } finally {
    await s.close();
  }
}

function noise(rng: Random, dims: number[], mean = 0): Feeds {
  return { x: float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => mean + rng.normal())) };
}

/** x [N,4,6,6] → Conv A (8 ch, channels scaled 0.01 … 100) → Relu → Conv B (`groupB` groups) → y. */
function imbalancedPair(groupB: number): Graph {
  const rng = new Random(21);
  const g = emptyGraph('pair', 17);
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 4, 6, 6] }];
  g.outputs = [{ name: 'y', dtype: 'float32', shape: ['N', 8, 6, 6] }];
  const spread = [0.01, 0.1, 1, 10, 100, 0.5, 2, 30];
  g.initializers.set('wa', float32([8, 4, 3, 3], Array.from({ length: 288 }, (_, i) => rng.normal() * spread[Math.floor(i / 36)]!)));
  g.initializers.set('ba', float32([8], spread.map((s) => 0.1 * s)));
  g.initializers.set('wb', float32([8, 8 / groupB, 3, 3], Array.from({ length: 8 * (8 / groupB) * 9 }, () => rng.normal())));
  const pads = { pads: { type: 'ints' as const, value: [1, 1, 1, 1] } };
  g.nodes = [
    node('A', 'Conv', ['x', 'wa', 'ba'], ['a'], pads),
    node('relu', 'Relu', ['a'], ['r']),
    node('B', 'Conv', ['r', 'wb'], ['y'], { ...pads, group: { type: 'int', value: groupB } }),
  ];
  return g;
}

describe('cross-layer equalization', () => {
  for (const groups of [1, 8]) {
    it(`equalizes per-channel ranges of a Conv → ReLU → Conv pair (group ${groups}) and keeps the function`, async () => {
      const g = imbalancedPair(groups);
      const { graph: eq, report } = equalizeCrossLayer(g);
      expect(report.pairs).toEqual(['A → B']);
      const wa = eq.initializers.get('wa')!.data as Float32Array;
      const wb = eq.initializers.get('wb')!.data as Float32Array;
      const perB = 8 / groups;
      for (let i = 0; i < 8; i++) {
        const r1 = Math.max(...Array.from(wa.subarray(i * 36, (i + 1) * 36), Math.abs));
        let r2 = 0;
        const group = Math.floor(i / perB);
        for (let o = group * (8 / groups); o < (group + 1) * (8 / groups); o++) {
          for (let k = 0; k < 9; k++) r2 = Math.max(r2, Math.abs(wb[(o * perB + (i % perB)) * 9 + k]!));
        }
        expect(r1 / r2).toBeCloseTo(1, 3);
      }
      const feed = noise(new Random(1), [2, 4, 6, 6]);
      const [before, after] = [(await run(g, feed))['y']!, (await run(eq, feed))['y']!];
      const b = before.data as Float32Array;
      const a = after.data as Float32Array;
      const scale = Math.max(...Array.from(b, Math.abs));
      for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5 * scale);
    });
  }

  it('leaves pairs alone when a weight is shared or the activation is not homogeneous (Clip)', () => {
    const clipped = imbalancedPair(1);
    clipped.initializers.set('lo', float32([], [0]));
    clipped.initializers.set('hi', float32([], [6]));
    clipped.nodes[1] = node('relu6', 'Clip', ['a', 'lo', 'hi'], ['r']);
    expect(equalizeCrossLayer(clipped).report.pairs).toEqual([]);
  });
});

describe('bias correction', () => {
  it('removes the mean output shift of rounded weights (1×1 conv: exact), checked by running ORT', async () => {
    const rng = new Random(5);
    const g = emptyGraph('pointwise', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 16, 5, 5] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: ['N', 6, 5, 5] }];
    g.initializers.set('w', float32([6, 16, 1, 1], Array.from({ length: 96 }, () => rng.normal())));
    g.initializers.set('b', float32([6], [0, 0, 0, 0, 0, 0]));
    g.nodes = [node('conv', 'Conv', ['x', 'w', 'b'], ['y'])];
    // Inputs with a large mean: the rounding error of the weights times that mean is the shift.
    const feeds = [0, 1, 2].map(() => noise(rng, [8, 16, 5, 5], 3));
    const options = { ...DEFAULT_STATIC, perChannel: false, reduceRange: true, biasCorrection: true };
    const facts = inferShapes(g);
    const plan = planQuantization(g, facts, options);
    const collector = await calibratePlan({ graph: g, facts }, plan, feeds, options.calibration, { threads: 1, channelMeans: true });
    const corrected = correctBiases(g, plan, collector, options);
    // The float graph with dequantized weights, with the original and the corrected bias.
    const wq = quantizeWeight(g.initializers.get('w')!, undefined, options);
    const withWeights = (bias: Tensor): Graph => {
      const c = cloneGraph(g);
      c.initializers.set('w', float32([6, 16, 1, 1], dequantizeArray(wq.values, [6, 16, 1, 1], undefined, wq.params)));
      c.initializers.set('b', bias);
      return c;
    };
    const meanShift = async (variant: Graph): Promise<number> => {
      let worst = 0;
      const sums = new Float64Array(6);
      let count = 0;
      for (const f of feeds) {
        const ref = (await run(g, f))['y']!.data as Float32Array;
        const test = (await run(variant, f))['y']!.data as Float32Array;
        for (let i = 0; i < ref.length; i++) sums[Math.floor(i / 25) % 6]! += test[i]! - ref[i]!;
        count += ref.length / 6;
      }
      for (const s of sums) worst = Math.max(worst, Math.abs(s / count));
      return worst;
    };
    const before = await meanShift(withWeights(g.initializers.get('b')!));
    const after = await meanShift(withWeights(corrected.initializers.get('b')!));
    expect(before).toBeGreaterThan(0.01);
    expect(after).toBeLessThan(before / 100);
  });
});

describe('SQNR debugger and sensitivity', () => {
  const rng = new Random(8);
  const feeds = [0, 1].map(() => ({ input: float32([16, 3, 32, 32], Array.from({ length: 16 * 3072 }, () => rng.normal())) }));

  it('reports local and accumulated SQNR for every activation and SQNR for every weight', async () => {
    const result = await quantizeStatic(buildZooModel('resnet18-cifar', { width: 0.125 }), feeds, DEFAULT_STATIC, { threads: 1 });
    const errors = await activationErrors(result, feeds, { threads: 1 });
    expect(errors.length).toBe([...result.plan.tensors.values()].filter((t) => t.kind === 'activation' || t.kind === 'same').length);
    const input = errors.find((e) => e.tensor === 'input')!;
    // Nothing upstream of the input: its accumulated error is its own quantization error.
    expect(input.accumulated).toBeCloseTo(input.local, 1);
    expect(input.local).toBeGreaterThan(30);
    const last = errors.find((e) => e.tensor === 'flatten')!;
    expect(last.accumulated!).toBeLessThan(last.local);
    for (const e of errors) expect(Number.isFinite(e.local) && Number.isFinite(e.accumulated!), e.tensor).toBe(true);
    const weights = weightErrors(result);
    expect(weights).toHaveLength(21);
    for (const w of weights) expect(w.local, w.tensor).toBeGreaterThan(30);
    // The reference is the model as prepared, not the bias-corrected float graph (another model: the
    // report measured int8 against it, and QAT distilled toward it).
    const biases = (g: typeof result.float): number[] => g.nodes.filter((n) => n.opType === 'Conv' && n.inputs[2]).flatMap((n) => Array.from(g.initializers.get(n.inputs[2]!)!.data as Float32Array));
    expect(result.reference).toBe(result.prepared.graph);
    expect(biases(result.float)).not.toEqual(biases(result.reference));
  });

  it('ranks a planted weak layer (one huge weight channel, per-tensor scales) as the most sensitive', async () => {
    const float = buildZooModel('resnet18-cifar', { width: 0.125 });
    const prepared = prepareFloatGraph(float, { equalize: false });
    const target = prepared.graph.nodes.find((n) => n.name === 'layer3.0.conv1')!;
    const w = prepared.graph.initializers.get(target.inputs[1]!)!;
    const data = Float32Array.from(w.data as Float32Array);
    const perChannel = data.length / w.dims[0]!;
    for (let k = 0; k < perChannel; k++) data[k]! *= 300; // channel 0 sets the per-tensor scale
    prepared.graph.initializers.set(target.inputs[1]!, float32(w.dims, data));
    // Exact int8 sums (helpers/int8-host.ts): saturation in another layer would outrank the planted one.
    const options = { ...DEFAULT_STATIC, perChannel: false, ...EXACT_ON_HOST };
    const plan = planQuantization(prepared.graph, prepared.facts, options);
    const collector = await calibratePlan(prepared, plan, feeds, options.calibration, { threads: 1 });
    const layers = await layerSensitivity(prepared, collector, options, feeds.slice(0, 1), { threads: 1 });
    expect(layers).toHaveLength(30); // 20 Conv + 8 Add + GlobalAveragePool + Gemm
    for (const l of layers) {
      expect(l.agreement).toBeGreaterThanOrEqual(0);
      expect(l.agreement).toBeLessThanOrEqual(1);
    }
    expect(rankBySensitivity(layers)[0]).toBe('layer3.0.conv1');
  });
});

describe('mixed-precision search', () => {
  const ranking = Array.from({ length: 20 }, (_, i) => `layer${i}`);
  /** top-1 rises as layers go float: the drop is 2 pt − 0.25 pt per float layer. */
  const fake = (maxDropPt: number) => {
    const built: number[] = [];
    return {
      built,
      options: {
        ranking,
        baseline: 0.9,
        maxDropPt,
        build: (floatLayers: string[]): Graph => {
          built.push(floatLayers.length);
          return { ...emptyGraph(String(floatLayers.length)) };
        },
        evaluate: async (g: Graph): Promise<number> => 0.9 - Math.max(0, 2 - 0.25 * Number(g.name)) / 100,
      },
    };
  };

  it('finds the fewest float layers that meet the target by doubling and bisection', async () => {
    const { built, options } = fake(0.6); // needs ≥ 5.6 → 6 float layers
    const r = await searchMixedPrecision(options);
    expect(r.met).toBe(true);
    expect(r.floatLayers).toEqual(ranking.slice(0, 6));
    expect(r.top1).toBeCloseTo(0.9 - 0.005, 10);
    expect(built.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(ranking.length)) + 1);
    expect(r.steps.map((s) => s.floatLayers)).toEqual(built);
  });

  it('stops at once when int8 already meets the target, and says so when nothing does', async () => {
    const easy = await searchMixedPrecision(fake(5).options);
    expect([easy.met, easy.floatLayers.length, easy.steps.length]).toEqual([true, 0, 1]);
    const impossible = fake(-1);
    const r = await searchMixedPrecision(impossible.options);
    expect(r.met).toBe(false);
    expect(r.floatLayers).toHaveLength(8); // 8 layers float already gives the best top-1 (drop 0)
  });

  it('meets a top-1 budget: ranks layers only when int8 alone misses it', async () => {
    // The float model is named 'float' (top-1 0.9); int8 graphs by their float-layer count, as above.
    const budget = (maxDropPt: number) => {
      const { built, options } = fake(maxDropPt);
      let rankings = 0;
      const evaluate = (g: Graph): Promise<number> => (g.name === 'float' ? Promise.resolve(0.9) : options.evaluate(g));
      return { built, rankings: () => rankings, options: { maxDropPt, build: options.build, evaluate, ranking: async () => (rankings++, ranking) } };
    };
    const floatGraph = emptyGraph('float');
    const easy = budget(5);
    const e = await meetTopOneBudget(floatGraph, emptyGraph('0'), easy.options);
    expect([e.searched, e.met, e.floatLayers.length, e.baseline, easy.rankings(), easy.built.length]).toEqual([false, true, 0, 0.9, 0, 0]);
    const hard = budget(0.6);
    const h = await meetTopOneBudget(floatGraph, emptyGraph('0'), hard.options);
    expect([h.searched, h.met, h.floatLayers, hard.rankings()]).toEqual([true, true, ranking.slice(0, 6), 1]);
    expect(h.steps[0]).toEqual({ floatLayers: 0, top1: 0.88, dropPt: expect.closeTo(2, 9) as number });
    // A drop exactly at the budget, as image counts give it (1700/2000 − 1690/2000 = 0.5000000000000004 pt),
    // is within it: no ranking (it was called over budget, scanned every layer, then kept none float).
    const edge = { ...budget(0.5).options, evaluate: (g: Graph): Promise<number> => Promise.resolve(g.name === 'float' ? 1700 / 2000 : 1690 / 2000) };
    let ranked = 0;
    const at = await meetTopOneBudget(floatGraph, emptyGraph('0'), { ...edge, ranking: async () => (ranked++, ranking), onOverBudget: () => ranked++ });
    expect([at.searched, at.met, ranked]).toEqual([false, true, 0]);
  });
});

describe('a calibration set that ran out', () => {
  it('is said when far below --samples, not when --samples itself asked for few', () => {
    expect(fewCalibrationImagesNote(3, 512, 'photos/')).toBe('note: calibrated on 3 images of photos/: activation ranges measured on so few miss what other images reach, and the int8 model clips them — calibrate on a few hundred images like the ones it will see (--samples 512 takes up to that many)');
    expect(fewCalibrationImagesNote(1, 512, 'one/')).toMatch(/^note: calibrated on 1 image of one\//);
    expect(fewCalibrationImagesNote(32, 32, 'cifar10')).toBeUndefined();
    expect(fewCalibrationImagesNote(64, 512, 'photos/')).toBeUndefined();
  });
});

describe('the --report markdown', () => {
  const measured = { sensitivity_images: 128, sqnr_images: 256, exact_kernels: false };

  it('says how many images each measurement used and on which kernels', () => {
    const base = { model: 'm.onnx', output: 'q.onnx', settings: {}, size_bytes_before: 4000, size_bytes_after: 1000, activations: [], weights: [], sensitivity: [], float_nodes: [] };
    expect(reportMarkdown({ ...base, measured })).toContain("Measured on calibration images: layer sensitivity on 128, SQNRs on 256, on this CPU's int8 kernels.");
    const saturating = reportMarkdown({ ...base, top1_before: 0.6, top1_after: 0.59, measured: { ...measured, sensitivity_images: 32, sqnr_images: 32, exact_kernels: true } });
    expect(saturating).toContain("layer sensitivity on 32, SQNRs on 32, on exact int8 kernels: this CPU's int8 sums saturate (x64 without VNNI), so for these measurements the weights were laid as uint8, the same model (the top-1 above is this CPU's, saturating).");
  });

  it('signs the top-1 change (a gain read as a loss without it)', () => {
    const base = { model: 'm.onnx', output: 'q.onnx', settings: {}, size_bytes_before: 4000, size_bytes_after: 1000, activations: [], weights: [], sensitivity: [], float_nodes: [], measured };
    expect(reportMarkdown({ ...base, top1_before: 0.152, top1_after: 0.156 })).toContain('Top-1: 15.20 % float → 15.60 % int8 (+0.40 pt).');
    expect(reportMarkdown({ ...base, top1_before: 0.156, top1_after: 0.152 })).toContain('(−0.40 pt).');
  });

  it('lists layers in the order --max-drop keeps them float: top-1 agreement first, then SQNR', () => {
    const base = { model: 'm.onnx', output: 'q.onnx', settings: {}, size_bytes_before: 4000, size_bytes_after: 1000, activations: [], weights: [], float_nodes: [], measured };
    const sensitivity = [
      { layer: 'a', opType: 'Conv', score: 20, agreement: 0.9 },
      { layer: 'b', opType: 'Conv', score: 30, agreement: 0.8 },
      { layer: 'c', opType: 'Conv', score: 25, agreement: 0.9 },
    ];
    const rows = reportMarkdown({ ...base, sensitivity }).split('\n').filter((l) => /^\| [abc] /.test(l)).map((l) => l[2]);
    // By SQNR alone it read a, c, b; --max-drop keeps b float first (it changes the most classes).
    expect(rows).toEqual(['b', 'a', 'c']);
  });
});

describe('--exclude', () => {
  it('names nodes of the model in dynamic quantization too: a typo was quantized silently', () => {
    const model = buildZooModel('resnet18-cifar', { width: 0.125 });
    const options = { perChannel: true, reduceRange: false, exclude: ['fc_typo'] };
    expect(() => quantizeDynamic(model, options)).toThrow(/--exclude names 'fc_typo', which is not a node of the model/);
    expect(quantizeDynamic(model, { ...options, exclude: ['fc'] }).layers).toEqual([]);
  });
});
