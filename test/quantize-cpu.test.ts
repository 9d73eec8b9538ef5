/**
 * The Conv layout per CPU (src/compress/quantize/cpu.ts, pad-channels.ts): the same weights with zero
 * point −1 (ORT's AMX GEMM path) or 0 (its direct symmetric convolution), and the RGB first Conv padded to
 * 4 input channels — exact, with ONNX Runtime as the oracle, and still fused into QLinearConv.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { arch, platform, release, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloneGraph, emptyGraph, GraphIndex, type Graph } from '../src/onnx/graph.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { modelStats } from '../src/runtime/stats.js';
import { unpadConvInputChannels } from '../src/compress/quantize/pad-channels.js';
import { encodeModel, readModel } from '../src/onnx/io.js';
import { runGraph } from '../src/runtime/ort.js';
import { float32, makeTensor } from '../src/onnx/tensor.js';
import { exactInt8Output } from './helpers/int8-host.js';
import { int8KernelsSaturate } from '../src/util/cpu-flags.js';
import { exactKernelsTwin, saturationNote } from '../src/compress/quantize/cpu.js';
import { forExactScoring } from '../src/compress/quantize/unsigned-layout.js';
import { buildZooModel } from '../src/zoo/index.js';
import { Random } from '../src/util/random.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath } from './helpers/fixtures.js';
import {
  calibrationTargets,
  computeParams,
  DEFAULT_STATIC,
  hostInt8Cpu,
  layoutChoice,
  insertQdq,
  ortKernels,
  padConvInputChannels,
  planQuantization,
  prepareFloatGraph,
  quantizeDynamic,
  quantizeStatic,
  retargetConvWeights,
  toGenericLayout,
  unfusedNodes,
  type TensorRange,
} from '../src/compress/quantize/index.js';
import { INT8_SYMMETRIC, UINT8_ASYMMETRIC } from '../src/compress/quantize/types.js';
import { unfusedReason } from '../src/cli/commands/quantize.js';
import { toCanonicalLayout, toCpuLayout } from '../src/compress/qat/index.js';

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

/** Input channels × kernel size of a Conv's (quantized) weight. */
function convK(g: Graph, name: string): number {
  const conv = g.nodes.find((n) => n.name === name)!;
  const dq = new GraphIndex(g).producer.get(conv.inputs[1]!)!;
  return g.initializers.get(dq.inputs[0]!)!.dims.slice(1).reduce((a, b) => a * b, 1);
}

describe('retargetConvWeights', () => {
  const generic = quantizeWithRanges(buildZooModel('resnet18-cifar', { width: 0.25 }));
  const amx = retargetConvWeights(generic, 'amx');
  /** Convs with input channels × kernel size ≥ 64 (the others stay on ConvSym). */
  const longK = generic.nodes.filter((n) => n.opType === 'Conv' && convK(generic, n.name) >= 64).map((n) => n.name);

  it('amx: every Conv with K ≥ 64 gets zero point −1 and values shifted by −1; the RGB first one (K = 27) and short 1×1s keep 0', () => {
    expect(amx.changed).toEqual(longK);
    expect(longK).toHaveLength(17); // all but conv1 (K = 27) and the 1×1 shortcuts from 16 and 32 channels
    const before = convWeights(generic);
    for (const [name, w] of convWeights(amx.graph)) {
      if (!longK.includes(name)) {
        expect(Array.from(w.zeros).every((z) => z === 0), name).toBe(true);
        continue;
      }
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
    const padded = padConvInputChannels(amx.graph);
    const outs = await Promise.all([generic, amx.graph, padded.graph].map((g) => exactInt8Output(g, feeds)));
    for (const out of outs.slice(1)) expect(out).toEqual(outs[0]);
    for (const g of [amx.graph, padded.graph]) {
      const { ops, floatOps } = await ortKernels(encodeModel(g).model);
      expect(ops).toMatchObject({ QLinearConv: 20 });
      expect(floatOps).toEqual({});
    }
  });

  it('avx2: uint8 weights at zero point 128 (q + 128), exact: ONNX Runtime computes what the exact kernels do, even without VNNI, and the generic layout comes back byte for byte', async () => {
    const rng = new Random(4);
    const feeds = { input: float32([4, 3, 32, 32], Array.from({ length: 4 * 3072 }, () => rng.normal())) };
    for (const from of [generic, amx.graph]) {
      const avx2 = retargetConvWeights(from, 'avx2');
      // 20 Convs and the Gemm.
      expect(avx2.changed).toHaveLength(21);
      const index = new GraphIndex(avx2.graph);
      for (const layer of avx2.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')) {
        const dq = index.producer.get(layer.inputs[1]!)!;
        const [values, zeros] = [avx2.graph.initializers.get(dq.inputs[0]!)!, avx2.graph.initializers.get(dq.inputs[2]!)!];
        expect([values.dtype, zeros.dtype], layer.name).toEqual(['uint8', 'uint8']);
        expect(Array.from(zeros.data as Uint8Array).every((z) => z === 128), layer.name).toBe(true);
      }
      // onnxruntime-node on this machine (its u8×u8 kernels are exact on every x64 CPU) against the exact computation.
      const node = Array.from(Object.values(await runGraph(avx2.graph, feeds, { threads: 1 }))[0]!.data as Float32Array);
      expect(node).toEqual(await exactInt8Output(generic, feeds));
      const { ops, floatOps } = await ortKernels(encodeModel(avx2.graph).model);
      expect(ops).toMatchObject({ QLinearConv: 20, QGemm: 1 });
      expect(floatOps).toEqual({});
      // QAT trains the canonical (generic) form and re-applies the layout the record names: the same bytes.
      const record = { ...avx2.graph, metadata: { ...avx2.graph.metadata, 'slimkit.quantization': JSON.stringify({ cpu: 'avx2' }) } };
      const canonical = toCanonicalLayout(record);
      expect(canonical.cpu).toBe('avx2');
      expect(Buffer.from(encodeModel(toCpuLayout(canonical.graph, 'avx2')).model).equals(Buffer.from(encodeModel(record).model))).toBe(true);
      const back = toGenericLayout(avx2.graph);
      expect(back.changed).toBe(true);
      expect(Buffer.from(encodeModel(back.graph).model).equals(Buffer.from(encodeModel(toGenericLayout(generic).graph).model))).toBe(true);
    }
    // Depthwise convs and a Gemm of a PyTorch export; uint8 weights another tool quantized asymmetrically stay as they are.
    const mobile = quantizeWithRanges(await readModel(fixturePath('torch-tiny-mobilenet.onnx')));
    const side = { input: float32([2, 3, 16, 16], Array.from({ length: 2 * 768 }, () => rng.normal())) };
    const laid = retargetConvWeights(mobile, 'avx2').graph;
    // Its float HardSwish and the web's Sigmoid table round apart (1e-4, as in quantize-accuracy.test.ts); the int8 sums agree.
    const mobileNode = Array.from(Object.values(await runGraph(laid, side, { threads: 1 }))[0]!.data as Float32Array);
    const mobileExact = await exactInt8Output(mobile, side);
    mobileNode.forEach((v, i) => expect(Math.abs(v - mobileExact[i]!)).toBeLessThan(1e-4));
    const foreign = cloneGraph(laid);
    const zeroName = new GraphIndex(foreign).producer.get(foreign.nodes.find((n) => n.opType === 'Conv')!.inputs[1]!)!.inputs[2]!;
    foreign.initializers.set(zeroName, makeTensor('uint8', foreign.initializers.get(zeroName)!.dims, new Uint8Array(foreign.initializers.get(zeroName)!.data.length).fill(120)));
    const signedBack = toGenericLayout(foreign).graph;
    expect(signedBack.initializers.get(zeroName)!.dtype).toBe('uint8');
  });

  it('pads the RGB first Conv to 4 input channels: a uint8 Pad at the zero point, weights with a zero channel', () => {
    const { graph: g, padded } = padConvInputChannels(generic);
    expect(padded).toEqual(['conv1']);
    const pad = g.nodes.find((n) => n.opType === 'Pad')!;
    const index = new GraphIndex(g);
    expect(index.producer.get(pad.inputs[0]!)?.opType).toBe('QuantizeLinear');
    expect(index.consumersOf(pad.outputs[0]!).map((n) => n.opType)).toEqual(['DequantizeLinear']);
    expect(Array.from(g.initializers.get(pad.inputs[1]!)!.data as BigInt64Array, Number)).toEqual([0, 0, 0, 0, 0, 1, 0, 0]);
    const dqx = index.producer.get(g.nodes.find((n) => n.name === 'conv1')!.inputs[0]!)!;
    expect(pad.inputs[2]).toBe(dqx.inputs[2]);
    const w = convWeights(g).get('conv1')!;
    const dims = g.initializers.get(index.producer.get(g.nodes.find((n) => n.name === 'conv1')!.inputs[1]!)!.inputs[0]!)!.dims;
    expect(dims).toEqual([16, 4, 3, 3]);
    for (let o = 0; o < 16; o++) expect(Array.from(w.values.subarray(o * 36 + 27, o * 36 + 36)), `channel ${o}`).toEqual(new Array(9).fill(0));
    // Nothing else has channels to pad, and a second pass finds nothing.
    expect(padConvInputChannels(g).padded).toEqual([]);
  });

  it('counts as the network it lays out: params and MACs of the padded model are the unpadded one\'s', () => {
    // A trial saw 700.4 k / 35.19 M for a model quantized with --cpu amx, 700.3 k / 35.05 M otherwise.
    const { graph: g } = padConvInputChannels(generic);
    const plain = modelStats(generic, inferShapes(generic));
    const laidOut = modelStats(g, inferShapes(g));
    expect(laidOut.params).toBe(plain.params);
    expect(laidOut.nonzeroParams).toBe(plain.nonzeroParams);
    expect(laidOut.macs).toBe(plain.macs);
    expect(laidOut.opHistogram['Pad']).toBe(1); // the ops are the file's
    const back = unpadConvInputChannels(g);
    expect(back.nodes.some((n) => n.opType === 'Pad')).toBe(false);
    expect(convWeights(back).get('conv1')!.values).toEqual(convWeights(generic).get('conv1')!.values);
    // Channels that are not all zero points are real weights: left alone.
    const tampered = cloneGraph(g);
    const dq = new GraphIndex(tampered).producer.get(tampered.nodes.find((n) => n.name === 'conv1')!.inputs[1]!)!;
    (tampered.initializers.get(dq.inputs[0]!)!.data as Int8Array)[27] = 5;
    expect(unpadConvInputChannels(tampered)).toBe(tampered);
  });

  it('a measured layout (only) picks Convs by the label it reports, also when the export left them unnamed', () => {
    const unnamed = { ...generic, nodes: generic.nodes.map((n) => ({ ...n, name: '' })) };
    const all = retargetConvWeights(unnamed, 'amx');
    expect(all.changed).toHaveLength(17);
    // The labels are the Convs' outputs; matched by node name, they re-laid none (17 → 0).
    expect(retargetConvWeights(unnamed, 'amx', { only: new Set(all.changed.slice(0, 5)) }).changed).toEqual(all.changed.slice(0, 5));
  });

  it('round-trips, and is a no-op on weights already laid out for the CPU', () => {
    expect(retargetConvWeights(amx.graph, 'amx').changed).toEqual([]);
    const back = retargetConvWeights(amx.graph, 'generic');
    expect(back.changed).toEqual(longK);
    const original = convWeights(generic);
    for (const [name, w] of convWeights(back.graph)) {
      expect(Array.from(w.values)).toEqual(Array.from(original.get(name)!.values));
      expect(Array.from(w.zeros)).toEqual(Array.from(original.get(name)!.zeros));
    }
    expect(retargetConvWeights(generic, 'generic').graph).toBe(generic);
  });

  it('leaves depthwise and grouped Convs at zero point 0 (ORT never runs them as a GEMM)', () => {
    const g = emptyGraph('depthwise', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 64, 6, 6] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 16, 1, 1] }];
    const rng = new Random(4);
    g.initializers.set('wd', float32([64, 1, 3, 3], Array.from({ length: 576 }, () => rng.normal())));
    g.initializers.set('wp', float32([16, 64, 1, 1], Array.from({ length: 1024 }, () => rng.normal())));
    g.nodes = [
      { name: 'dw', opType: 'Conv', domain: '', inputs: ['x', 'wd'], outputs: ['d'], attributes: { group: { type: 'int', value: 64 }, pads: { type: 'ints', value: [1, 1, 1, 1] } } },
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
  it("'generic' keeps zero point 0 and 3 channels; 'amx' pads the first Conv and gives the others −1; the metadata says which", async () => {
    const rng = new Random(5);
    const feeds = [{ input: float32([4, 3, 32, 32], Array.from({ length: 4 * 3072 }, () => rng.normal())) }];
    const float = buildZooModel('resnet18-cifar', { width: 0.25 });
    for (const cpu of ['generic', 'amx'] as const) {
      const { graph } = await quantizeStatic(float, feeds, { ...DEFAULT_STATIC, cpu }, { threads: 1 });
      const weights = convWeights(graph);
      for (const [name, w] of weights) {
        const expected = cpu === 'amx' && convK(graph, name) >= 64 ? -1 : 0;
        expect(new Set(w.zeros), name).toEqual(new Set([expected]));
      }
      expect(convK(graph, 'conv1')).toBe(cpu === 'amx' ? 36 : 27);
      expect(graph.nodes.filter((n) => n.opType === 'Pad')).toHaveLength(cpu === 'amx' ? 1 : 0);
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
      // ORT's x64 int8 sums saturate without VNNI or AMX (vpmaddubsw); off Linux x64 there are no flags to read.
      const linuxX64 = platform() === 'linux' && arch() === 'x64';
      expect(int8KernelsSaturate(file(''))).toBe(linuxX64);
      for (const exact of ['avx512_vnni', 'avx_vnni', 'amx_tile amx_int8']) expect(int8KernelsSaturate(file(exact)), exact).toBe(false);
      expect(int8KernelsSaturate(path.join(dir, 'missing'))).toBe(false);
      // A model is named only when its int8 weights go past 7 bits (|q| > 64), and only on such a CPU.
      const model = (q: number): Graph => {
        const g = emptyGraph('dq');
        g.initializers.set('w', makeTensor('int8', [2], Int8Array.of(q, -3)));
        g.initializers.set('s', float32([], [0.1]));
        g.nodes = [{ name: 'dq', opType: 'DequantizeLinear', domain: '', inputs: ['w', 's'], outputs: ['y'], attributes: {} }];
        return g;
      };
      expect(saturationNote(model(64), 'm.onnx')).toBeUndefined();
      expect(saturationNote(model(-65), 'm.onnx') !== undefined).toBe(int8KernelsSaturate());
      // Dynamic quantization's weights feed MatMulInteger itself; its activation slot is never a weight.
      const dynamic = (slot: 0 | 1): Graph => {
        const g = model(100);
        g.nodes = [{ name: 'mm', opType: 'MatMulInteger', domain: '', inputs: slot === 1 ? ['a', 'w'] : ['w', 'a'], outputs: ['y'], attributes: {} }];
        return g;
      };
      expect(saturationNote(dynamic(1), 'm.onnx') !== undefined).toBe(int8KernelsSaturate());
      expect(saturationNote(dynamic(0), 'm.onnx')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--reduce-range never takes the AMX layout: its −65…64 weights overflow where 7 bits do not', () => {
    // 'auto' on an AMX host laid reduced-range weights out as −65…64.
    expect(layoutChoice('auto', true)).toBe('generic');
    expect(layoutChoice('auto', false)).toBe('auto');
    expect(layoutChoice('amx', false)).toBe('amx');
    expect(() => layoutChoice('amx', true)).toThrow(/^cpu: 'amx' lays int8 Conv weights out as −65…64, past the 7 bits reduceRange keeps them to/);
  });
});

describe("slimkit's own int8 measurements", () => {
  it('run the model on exact kernels where this CPU saturates: its weights as uint8 (the same model), else as they are', async () => {
    const g = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const x = float32([8, 3, 16, 16], Array.from({ length: 8 * 768 }, (_, i) => Math.sin(i) * 2));
    const { graph } = await quantizeStatic(g, [{ [g.inputs[0]!.name]: x }], { ...DEFAULT_STATIC, cpu: 'generic' }, { threads: 1 });
    const measured = forExactScoring(graph);
    const weightTypes = (m: Graph) => new Set(m.nodes.filter((n) => n.opType === 'DequantizeLinear').map((n) => m.initializers.get(n.inputs[0]!)?.dtype).filter((t) => t !== undefined));
    expect(weightTypes(measured).has('int8')).toBe(!int8KernelsSaturate());
    if (!int8KernelsSaturate()) expect(measured).toBe(graph);
    // What it measures is the exact model's output, on any host.
    const feeds = { [g.inputs[0]!.name]: x };
    expect(Array.from(Object.values(await runGraph(measured, feeds, { threads: 1 }))[0]!.data as Float32Array)).toEqual(await exactInt8Output(graph, feeds));
    // The twin slim bench and the bench stage score beside this CPU's top-1: there only where this CPU saturates.
    const twin = exactKernelsTwin(graph);
    expect(twin !== undefined).toBe(int8KernelsSaturate());
    if (twin) expect(Array.from(Object.values(await runGraph(twin, feeds, { threads: 1 }))[0]!.data as Float32Array)).toEqual(await exactInt8Output(graph, feeds));
    // A float model, and 7-bit weights (exact everywhere), have none.
    expect(exactKernelsTwin(g)).toBeUndefined();
    expect(exactKernelsTwin((await quantizeStatic(g, [feeds], { ...DEFAULT_STATIC, cpu: 'generic', reduceRange: true }, { threads: 1 })).graph)).toBeUndefined();
  });
});

describe('the cpu option of dynamic quantization', () => {
  it("'avx2': uint8 weights at zero point 128, one fused DynamicQuantizeMatMul, exact where the int8 weights' sums saturate", async () => {
    // A 64 → 10 Gemm on inputs in 0…4: uint8 activations up to 255 against full 8-bit weights.
    const rng = new Random(1);
    const [k, n] = [64, 10];
    const g: Graph = {
      ...emptyGraph('fc'),
      inputs: [{ name: 'x', dtype: 'float32', shape: [4, k] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [4, n] }],
      nodes: [{ name: 'fc', opType: 'Gemm', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: { transB: { type: 'int', value: 1 } } }],
      initializers: new Map([
        ['w', float32([n, k], Array.from({ length: n * k }, () => rng.next() - 0.5))],
        ['b', float32([n], Array.from({ length: n }, () => 0.1))],
      ]),
    };
    const feeds = { x: float32([4, k], Array.from({ length: 4 * k }, () => rng.next() * 4)) };
    const signed = quantizeDynamic(g, { perChannel: true, reduceRange: false, exclude: [] }).graph;
    const unsigned = quantizeDynamic(g, { perChannel: true, reduceRange: false, exclude: [], cpu: 'avx2' }).graph;
    const weights = (m: Graph) => [...m.initializers].filter(([name]) => /weight_(quantized|zero_point)$/.test(name)).map(([, t]) => t);
    const [[sq, sz], [uq, uz]] = [weights(signed), weights(unsigned)];
    expect([sq!.dtype, sz!.dtype, uq!.dtype, uz!.dtype]).toEqual(['int8', 'int8', 'uint8', 'uint8']);
    expect(Array.from(uq!.data as Uint8Array)).toEqual(Array.from(sq!.data as Int8Array, (q) => q + 128));
    expect(new Set(uz!.data as Uint8Array)).toEqual(new Set([128]));
    expect((await ortKernels(encodeModel(unsigned).model)).ops).toEqual({ DynamicQuantizeMatMul: 1 });
    // The same model: the exact kernels (helpers/int8-host.ts) give both encodings the same outputs, and
    // onnxruntime-node computes those for the uint8 weights, on any x64.
    const exact = await exactInt8Output(signed, feeds);
    expect(await exactInt8Output(unsigned, feeds)).toEqual(exact);
    const out = async (m: Graph) => Array.from(Object.values(await runGraph(m, feeds, { threads: 1 }))[0]!.data as Float32Array);
    expect(await out(unsigned)).toEqual(exact);
    // …where the int8 weights' do not: 1.70 off on an AVX2-only EPYC.
    const gap = Math.max(...(await out(signed)).map((v, i) => Math.abs(v - exact[i]!)));
    if (int8KernelsSaturate()) expect(gap).toBeGreaterThan(0.5);
    else expect(gap).toBe(0);
    expect(() => quantizeDynamic(g, { perChannel: true, reduceRange: false, exclude: [], cpu: 'amx' })).toThrow(/^cpu: 'amx' lays int8 Conv weights out for Intel AMX, and dynamic quantization quantizes MatMul\/Gemm layers only/);
  });
});

describe('slim quantize --cpu amx on a CPU without AMX', () => {
  it.skipIf(hostInt8Cpu() === 'amx')('warns that the model will be slower here, and still writes it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-cpu-amx-'));
    try {
      const folder = path.join(dir, 'images', 'a');
      mkdirSync(folder, { recursive: true });
      mkdirSync(path.join(dir, 'images', 'b'));
      for (const [i, sub] of ['a', 'b'].entries()) {
        await sharp(Buffer.alloc(16 * 16 * 3, 40 + 100 * i), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(dir, 'images', sub, 'x.png'));
      }
      const out = path.join(dir, 'q.onnx');
      const r = await runSlim(['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', out, '--calib', path.join(dir, 'images'), '--cpu', 'amx', '--method', 'minmax']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/note: --cpu amx lays the int8 Convs out for Intel AMX, which this CPU lacks/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quantized nodes ONNX Runtime still runs in float', () => {
  const quantized = (activations: typeof INT8_SYMMETRIC): Graph => {
    const options = { ...DEFAULT_STATIC, activations };
    const prepared = prepareFloatGraph(buildZooModel('resnet18-cifar', { width: 0.125, seed: 2 }), options);
    const plan = planQuantization(prepared.graph, prepared.facts, options);
    const ranges = new Map<string, TensorRange>(calibrationTargets(plan).map((t) => [t, { min: -1, max: 2 }]));
    return insertQdq(prepared.graph, plan, computeParams(prepared.graph, plan, ranges, options));
  };

  it('are named: on x64 int8 activations leave Convs unfused (its QDQ fusion takes them on arm64 only); uint8 leaves none', async () => {
    const u8 = quantized(UINT8_ASYMMETRIC);
    expect(unfusedNodes(u8, await ortKernels(encodeModel(u8).model), new Set())).toEqual([]);
    const s8 = quantized(INT8_SYMMETRIC);
    const unfused = unfusedNodes(s8, await ortKernels(encodeModel(s8).model), new Set());
    if (arch() === 'x64') {
      expect(unfused.filter((u) => u.opType === 'Conv').length).toBeGreaterThan(0);
      // Each one is a node of the written model that reads a DequantizeLinear: slimkit quantized it.
      for (const u of unfused) expect(s8.nodes.find((n) => n.name === u.node)?.opType, u.node).toBe(u.opType);
      // A node the quantizer kept float itself is reported with its own reason, not here again.
      expect(unfusedNodes(s8, await ortKernels(encodeModel(s8).model), new Set([unfused[0]!.node]))).toHaveLength(unfused.length - 1);
    }
    // The int8 gate is Conv's and MatMul's: a Relu or an Add left float is not its doing.
    expect(unfusedReason('int8', 'Conv', 'x64')).toMatch(/on x64 leaves most Conv and MatMul with int8 activations unfused, in float .*keep the default --activation-type uint8/);
    expect(unfusedReason('int8', 'Add', 'x64')).toBe('no fused integer kernel for this pattern in ONNX Runtime here');
    expect(unfusedReason('int8', 'Conv', 'arm64')).toBe('no fused integer kernel for this pattern in ONNX Runtime here');
  });
});
