/**
 * The Conv weight layout per CPU (src/compress/quantize/cpu.ts): the same weights with zero point −1
 * (ORT's AMX GEMM path) or 0 (its direct symmetric convolution) — exact both ways, with ONNX Runtime as
 * the oracle, still fused into QLinearConv, and only on plain (group 1) Convs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, platform, release, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyGraph, GraphIndex, type Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { float32 } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { buildZooModel } from '../src/zoo/index.js';
import { Random } from '../src/util/random.js';
import {
  calibrationTargets,
  computeParams,
  DEFAULT_STATIC,
  hostInt8Cpu,
  insertQdq,
  ortKernels,
  planQuantization,
  prepareFloatGraph,
  quantizeStatic,
  retargetConvWeights,
  type TensorRange,
} from '../src/compress/quantize/index.js';

function quantizeWithRanges(graph: Graph): Graph {
  const prepared = prepareFloatGraph(graph, DEFAULT_STATIC);
  const plan = planQuantization(prepared.graph, prepared.facts, DEFAULT_STATIC);
  const ranges = new Map<string, TensorRange>(calibrationTargets(plan).map((t) => [t, { min: -1, max: 2 }]));
  return insertQdq(prepared.graph, plan, computeParams(prepared.graph, plan, ranges, DEFAULT_STATIC));
}

/** Per Conv (by name): its weight DequantizeLinear's int8 values and zero points. */
function convWeights(g: Graph): Map<string, { values: Int8Array; zeros: Int8Array }> {
  const index = new GraphIndex(g);
  const out = new Map<string, { values: Int8Array; zeros: Int8Array }>();
  for (const conv of g.nodes.filter((n) => n.opType === 'Conv')) {
    const dq = index.producer.get(conv.inputs[1]!)!;
    out.set(conv.name, { values: g.initializers.get(dq.inputs[0]!)!.data as Int8Array, zeros: g.initializers.get(dq.inputs[2]!)!.data as Int8Array });
  }
  return out;
}

describe('retargetConvWeights', () => {
  const generic = quantizeWithRanges(buildZooModel('resnet18-cifar', { width: 0.125 }));
  const amx = retargetConvWeights(generic, 'amx');

  it('amx: every Conv weight gets zero point −1 and values shifted by −1, within int8', () => {
    expect(amx.changed).toHaveLength(20);
    const before = convWeights(generic);
    for (const [name, w] of convWeights(amx.graph)) {
      expect(Array.from(w.zeros).every((z) => z === -1), name).toBe(true);
      const old = before.get(name)!;
      expect(Array.from(old.zeros).every((z) => z === 0), name).toBe(true);
      let mismatches = 0;
      for (let i = 0; i < w.values.length; i++) if (w.values[i] !== old.values[i]! - 1) mismatches++;
      expect(mismatches, name).toBe(0);
    }
    // The input graph is untouched (graphs are immutable).
    expect(Array.from(convWeights(generic).values())[0]!.zeros[0]).toBe(0);
  });

  it('is exact: ONNX Runtime gives bit-identical outputs, and still runs QLinearConv ×20 with no float Conv', async () => {
    const rng = new Random(3);
    const feeds = { input: float32([4, 3, 32, 32], Array.from({ length: 4 * 3072 }, () => rng.normal())) };
    const [a, b] = await Promise.all([runGraph(generic, feeds, { threads: 1 }), runGraph(amx.graph, feeds, { threads: 1 })]);
    expect(Array.from(b['logits']!.data as Float32Array)).toEqual(Array.from(a['logits']!.data as Float32Array));
    const { ops } = await ortKernels(encodeModel(amx.graph).model);
    expect(ops).toMatchObject({ QLinearConv: 20 });
    expect(ops['Conv']).toBeUndefined();
    expect(ops['DequantizeLinear']).toBeUndefined();
  });

  it('round-trips, and is a no-op on weights already laid out for the CPU', () => {
    expect(retargetConvWeights(amx.graph, 'amx').changed).toEqual([]);
    const back = retargetConvWeights(amx.graph, 'generic');
    expect(back.changed).toHaveLength(20);
    const original = convWeights(generic);
    for (const [name, w] of convWeights(back.graph)) {
      expect(Array.from(w.values)).toEqual(Array.from(original.get(name)!.values));
      expect(Array.from(w.zeros)).toEqual(Array.from(original.get(name)!.zeros));
    }
    expect(retargetConvWeights(generic, 'generic').graph).toBe(generic);
  });

  it('leaves depthwise and grouped Convs at zero point 0 (ORT never runs them as a GEMM)', () => {
    const g = emptyGraph('depthwise', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 8, 6, 6] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 16, 1, 1] }];
    const rng = new Random(4);
    g.initializers.set('wd', float32([8, 1, 3, 3], Array.from({ length: 72 }, () => rng.normal())));
    g.initializers.set('wp', float32([16, 8, 1, 1], Array.from({ length: 128 }, () => rng.normal())));
    g.nodes = [
      { name: 'dw', opType: 'Conv', domain: '', inputs: ['x', 'wd'], outputs: ['d'], attributes: { group: { type: 'int', value: 8 }, pads: { type: 'ints', value: [1, 1, 1, 1] } } },
      { name: 'pw', opType: 'Conv', domain: '', inputs: ['d', 'wp'], outputs: ['p'], attributes: {} },
      { name: 'gap', opType: 'GlobalAveragePool', domain: '', inputs: ['p'], outputs: ['y'], attributes: {} },
    ];
    const r = retargetConvWeights(quantizeWithRanges(g), 'amx');
    expect(r.changed).toEqual(['pw']);
    const w = convWeights(r.graph);
    expect(Array.from(w.get('dw')!.zeros).every((z) => z === 0)).toBe(true);
    expect(Array.from(w.get('pw')!.zeros).every((z) => z === -1)).toBe(true);
  });
});

describe('the cpu option of static quantization', () => {
  it("'generic' keeps zero point 0, 'amx' gives −1, and the model metadata says which", async () => {
    const rng = new Random(5);
    const feeds = [{ input: float32([4, 3, 32, 32], Array.from({ length: 4 * 3072 }, () => rng.normal())) }];
    const float = buildZooModel('resnet18-cifar', { width: 0.125 });
    for (const cpu of ['generic', 'amx'] as const) {
      const { graph } = await quantizeStatic(float, feeds, { ...DEFAULT_STATIC, cpu }, { threads: 1 });
      const zeros = [...convWeights(graph).values()].flatMap((w) => Array.from(w.zeros));
      expect(new Set(zeros)).toEqual(new Set([cpu === 'amx' ? -1 : 0]));
      expect(JSON.parse(graph.metadata['slimkit.quantization']!)).toMatchObject({ cpu });
    }
  });

  it("'auto' reads the CPU flags: AMX-INT8 on Linux x64 with kernel ≥ 5.16, else generic", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-cpuinfo-'));
    try {
      const file = (flags: string): string => {
        const f = path.join(dir, `cpuinfo-${flags.length}`);
        writeFileSync(f, `processor\t: 0\nflags\t\t: fpu sse2 avx2 ${flags}\n\nprocessor\t: 1\nflags\t\t: fpu ${flags}\n`);
        return f;
      };
      expect(hostInt8Cpu(file('avx512_vnni'))).toBe('generic');
      const [major = 0, minor = 0] = release().split('.').map(Number);
      const canAmx = platform() === 'linux' && arch() === 'x64' && (major > 5 || (major === 5 && minor >= 16));
      expect(hostInt8Cpu(file('avx512_vnni amx_bf16 amx_tile amx_int8'))).toBe(canAmx ? 'amx' : 'generic');
      expect(hostInt8Cpu(path.join(dir, 'missing'))).toBe('generic');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
