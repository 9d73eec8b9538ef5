/**
 * Quantization arithmetic: hand-computed scales and zero points, and ONNX Runtime's QuantizeLinear /
 * DequantizeLinear as the oracle for rounding, clamping and per-axis layout.
 */
import { describe, expect, it } from 'vitest';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { float32, makeTensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import {
  absMaxPerChannel,
  computeScaleZeroPoint,
  dequantizeArray,
  fakeQuantize,
  qRange,
  quantizeArray,
  quantizeValue,
  representableRange,
  roundHalfEven,
  sqnrDb,
} from '../src/compress/quantize/math.js';

describe('qmin / qmax table', () => {
  it('matches the ranges integer kernels use', () => {
    expect(qRange('uint8')).toEqual({ qmin: 0, qmax: 255 });
    expect(qRange('int8')).toEqual({ qmin: -128, qmax: 127 });
    expect(qRange('int8', { symmetric: true })).toEqual({ qmin: -127, qmax: 127 });
    expect(qRange('int8', { symmetric: true, reduceRange: true })).toEqual({ qmin: -64, qmax: 64 });
    expect(qRange('uint8', { reduceRange: true })).toEqual({ qmin: 0, qmax: 127 });
    expect(qRange('int32', { symmetric: true })).toEqual({ qmin: -(2 ** 31 - 1), qmax: 2 ** 31 - 1 });
  });
});

describe('computeScaleZeroPoint', () => {
  it('asymmetric uint8 over [-1, 3]: scale 4/255, zero point round(1 / scale) = 64', () => {
    const p = computeScaleZeroPoint(-1, 3, qRange('uint8'), false);
    expect(p.scale).toBe(Math.fround(4 / 255));
    expect(p.zeroPoint).toBe(64); // 63.75 rounds to 64
  });

  it('widens a range that excludes 0 so that 0 stays exact', () => {
    const p = computeScaleZeroPoint(2, 5, qRange('uint8'), false);
    expect(p.scale).toBe(Math.fround(5 / 255));
    expect(p.zeroPoint).toBe(0);
    const n = computeScaleZeroPoint(-6, -1, qRange('uint8'), false);
    expect(n.zeroPoint).toBe(255);
    expect(fakeQuantize(0, n.scale, n.zeroPoint, qRange('uint8'))).toBe(0);
  });

  it('symmetric int8: scale max|x| / 127 and zero point 0', () => {
    const p = computeScaleZeroPoint(-0.5, 2.54, qRange('int8', { symmetric: true }), true);
    expect(p.scale).toBe(Math.fround(2.54 / 127));
    expect(p.zeroPoint).toBe(0);
    expect(representableRange(p, qRange('int8', { symmetric: true }))[1]).toBeCloseTo(2.54, 6);
  });

  it('symmetric uint8 puts the zero point at 128', () => {
    expect(computeScaleZeroPoint(-1, 1, qRange('uint8'), true).zeroPoint).toBe(128);
  });

  it('gives scale 1 for an all-zero range and refuses a broken one', () => {
    expect(computeScaleZeroPoint(0, 0, qRange('uint8'), false)).toEqual({ scale: 1, zeroPoint: 0 });
    expect(computeScaleZeroPoint(0, 0, qRange('int8', { symmetric: true }), true)).toEqual({ scale: 1, zeroPoint: 0 });
    expect(() => computeScaleZeroPoint(NaN, 1, qRange('uint8'), false)).toThrow(/invalid range/);
    expect(() => computeScaleZeroPoint(2, 1, qRange('uint8'), false)).toThrow(/invalid range/);
  });
});

describe('rounding and clamping', () => {
  it('rounds half to even like QuantizeLinear', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, 3]);
  });

  it('quantizes, saturates and dequantizes one value', () => {
    const r = qRange('uint8');
    expect(quantizeValue(1000, 0.1, 10, r)).toBe(255);
    expect(quantizeValue(-1000, 0.1, 10, r)).toBe(0);
    expect(quantizeValue(0.25, 0.1, 10, r)).toBe(12); // 2.5 → 2, + 10
    expect(fakeQuantize(0.25, 0.1, 10, r)).toBeCloseTo(0.2, 7);
    // Divided in float32 as QuantizeLinear does (numpy: np.float32(x) / np.float32(s) = −71.5 → −72);
    // in float64 the quotient is −71.49999695 and rounded to −71.
    const [x, s] = [Math.fround(-0.08044889), Math.fround(0.0011251593)];
    expect(quantizeValue(x, s, 0, qRange('int8'))).toBe(-72);
  });

  it('per-channel absmax, quantize and dequantize along axis 0 and axis 1', () => {
    const w = Float32Array.from([1, -2, 0.5, 4, -8, 2]); // [2, 3]
    expect(Array.from(absMaxPerChannel(w, [2, 3], 0))).toEqual([2, 8]);
    expect(Array.from(absMaxPerChannel(w, [2, 3], 1))).toEqual([4, 8, 2]);
    expect(Array.from(absMaxPerChannel(w, [2, 3], undefined))).toEqual([8]);
    const r = qRange('int8', { symmetric: true });
    const params = [2, 8].map((m) => computeScaleZeroPoint(-m, m, r, true));
    const q = quantizeArray(w, [2, 3], 0, params, r);
    // Channel 0: scale 2/127 → 1 → 63.5 → 64 (even), -2 → -127, 0.5 → 31.75 → 32. Channel 1: scale 8/127.
    expect(Array.from(q)).toEqual([64, -127, 32, 64, -127, 32]);
    const back = dequantizeArray(q, [2, 3], 0, params);
    for (let i = 0; i < 6; i++) expect(Math.abs(back[i]! - w[i]!)).toBeLessThanOrEqual((i < 3 ? 2 : 8) / 127 / 2 + 1e-6);
  });

  it('reports SQNR in dB', () => {
    expect(sqnrDb(100, 1)).toBeCloseTo(20, 12);
    expect(sqnrDb(1, 0)).toBe(Infinity);
  });
});

describe('against ONNX Runtime QuantizeLinear → DequantizeLinear', () => {
  function qdqGraph(dims: number[], scale: number[], zero: number[], type: 'uint8' | 'int8', axis?: number): Graph {
    const g = emptyGraph('qdq', 17);
    const perAxis = scale.length > 1;
    g.inputs = [{ name: 'x', dtype: 'float32', shape: dims }];
    g.outputs = [
      { name: 'q', dtype: type, shape: dims },
      { name: 'y', dtype: 'float32', shape: dims },
    ];
    g.initializers.set('s', float32(perAxis ? [scale.length] : [], scale));
    g.initializers.set('z', makeTensor(type, perAxis ? [zero.length] : [], type === 'uint8' ? Uint8Array.from(zero) : Int8Array.from(zero)));
    const attributes: Node['attributes'] = axis !== undefined ? { axis: { type: 'int', value: axis } } : {};
    g.nodes = [
      { name: 'Q', opType: 'QuantizeLinear', domain: '', inputs: ['x', 's', 'z'], outputs: ['q'], attributes },
      { name: 'DQ', opType: 'DequantizeLinear', domain: '', inputs: ['q', 's', 'z'], outputs: ['y'], attributes },
    ];
    return g;
  }

  it('gives the same integers and values per tensor (ties and saturation included)', async () => {
    const rng = new Random(3);
    const x = Array.from({ length: 4096 }, () => rng.normal() * 3);
    // Exact ties at the scale's multiples, and values far beyond the range.
    x.push(0.5 * 0.0625, 1.5 * 0.0625, -2.5 * 0.0625, 1e6, -1e6);
    const r = qRange('uint8');
    const p = computeScaleZeroPoint(-4, 6, r, false);
    const out = await runGraph(qdqGraph([x.length], [p.scale], [p.zeroPoint], 'uint8'), { x: float32([x.length], x) }, { threads: 1 });
    const ours = quantizeArray(Float32Array.from(x), [x.length], undefined, [p], r);
    expect(Array.from(out['q']!.data as Uint8Array)).toEqual(Array.from(ours));
    const tie = computeScaleZeroPoint(-8, 7.9375, qRange('int8'), false); // scale 0.0625 exactly
    expect(tie.scale).toBe(0.0625);
    const tieOut = await runGraph(qdqGraph([x.length], [tie.scale], [tie.zeroPoint], 'int8'), { x: float32([x.length], x) }, { threads: 1 });
    expect(Array.from(tieOut['q']!.data as Int8Array)).toEqual(Array.from(quantizeArray(Float32Array.from(x), [x.length], undefined, [tie], qRange('int8'))));
    const y = tieOut['y']!.data as Float32Array;
    for (let i = 0; i < x.length; i++) expect(y[i]).toBe(Math.fround(fakeQuantize(x[i]!, tie.scale, tie.zeroPoint, qRange('int8'))));
  });

  it('gives the same integers per channel (axis 1 of [2, 3, 4])', async () => {
    const rng = new Random(5);
    const dims = [2, 3, 4];
    const x = Float32Array.from({ length: 24 }, () => rng.normal());
    const r = qRange('int8', { symmetric: true });
    const params = Array.from(absMaxPerChannel(x, dims, 1), (m) => computeScaleZeroPoint(-m, m, r, true));
    const out = await runGraph(qdqGraph(dims, params.map((p) => p.scale), params.map((p) => p.zeroPoint), 'int8', 1), { x: float32(dims, x) }, { threads: 1 });
    expect(Array.from(out['q']!.data as Int8Array)).toEqual(Array.from(quantizeArray(x, dims, 1, params, r)));
    const y = out['y']!.data as Float32Array;
    const ours = dequantizeArray(quantizeArray(x, dims, 1, params, r), dims, 1, params);
    for (let i = 0; i < 24; i++) expect(y[i]).toBeCloseTo(ours[i]!, 6);
  });
});
