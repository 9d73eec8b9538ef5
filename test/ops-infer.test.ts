/**
 * Shape inference per op: hand-computed shapes, MACs and known values, and the errors bad inputs or
 * attributes give (each must name the problem). ORT agreement is in ops-ort.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { DType } from '../src/onnx/dtype.js';
import { emptyGraph, type Dim } from '../src/onnx/graph.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, int64, makeTensor } from '../src/onnx/tensor.js';
import { OpError } from '../src/ops/op-def.js';
import { OPS } from '../src/ops/registry.js';
import { broadcastShapes } from '../src/ops/shared/shapes.js';
import { windowOutputDim } from '../src/ops/shared/window.js';
import { sliceIndices, sliceLength } from '../src/ops/slice.js';
import { a, c, inferSingleNode, inferSingleNodeResult, type InputSpec, type SingleNodeCase } from './helpers/single-node.js';

const x = (shape: Dim[], dtype: DType = 'float32'): InputSpec => ({ dtype, shape });
const shapeOf = (spec: SingleNodeCase, output = 0): Dim[] | undefined => inferSingleNode(spec)[output]?.shape;
const dtypeOf = (spec: SingleNodeCase, output = 0): DType | undefined => inferSingleNode(spec)[output]?.dtype;
const knownOf = (spec: SingleNodeCase, output = 0): Dim[] | undefined => inferSingleNodeResult(spec).known.get(`y${output}`)?.values;
const macsOf = (spec: SingleNodeCase): number => inferSingleNodeResult(spec).totalMacs;
const fails = (spec: SingleNodeCase, problem: RegExp): void => {
  expect(() => inferSingleNode(spec)).toThrow(problem);
};
const isFresh = (d: Dim | undefined): boolean => typeof d === 'string' && d.startsWith('?');

describe('errors', () => {
  it('ops throw OpError; inference turns it into a SlimError naming the node', () => {
    const node = { name: 'conv1', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} };
    const inputs = [
      { name: 'x', type: { dtype: 'float32' as const, shape: [1, 3, 8, 8] } },
      { name: 'w', type: { dtype: 'float32' as const, shape: [4, 5, 3, 3] } },
    ];
    const ctx = { node, attrs: OPS.Conv.parseAttrs(node, 17), opset: 17, inputs };
    expect(() => OPS.Conv.inferTypes(ctx)).toThrow(OpError);
    expect(() => inferSingleNode({ opType: 'Conv', inputs: [x([1, 3, 8, 8]), x([4, 5, 3, 3])] })).toThrow(
      /node 'node' \(Conv\): input 'x0' has 3 channels but weight 'x1' expects 5 × group 1 = 5/,
    );
  });
});

describe('shared helpers', () => {
  it('computes window output sizes (ONNX formula, ceil_mode guard, auto_pad)', () => {
    const base = { kernel: 3, stride: 2, dilation: 1, padBegin: 1, padEnd: 1, autoPad: 'NOTSET' as const, ceilMode: false };
    expect(windowOutputDim({ ...base, input: 32 })).toBe(16); // floor((32 + 2 - 3) / 2) + 1
    expect(windowOutputDim({ ...base, input: 7, padBegin: 0, padEnd: 0, ceilMode: true })).toBe(3); // ceil(4 / 2) + 1
    expect(windowOutputDim({ ...base, input: 8, padBegin: 0, padEnd: 0, ceilMode: true })).toBe(4); // ceil(5 / 2) + 1
    // Last window would start at 6 = input 5 + padBegin 1: PyTorch and ORT drop it.
    expect(windowOutputDim({ ...base, input: 5, kernel: 2, ceilMode: true })).toBe(3);
    expect(windowOutputDim({ ...base, input: 10, dilation: 2, padBegin: 0, padEnd: 0 })).toBe(3); // span 5: floor(5 / 2) + 1
    expect(windowOutputDim({ ...base, input: 7, autoPad: 'SAME_UPPER' })).toBe(4);
    expect(windowOutputDim({ ...base, input: 8, autoPad: 'SAME_LOWER', stride: 3 })).toBe(3);
    expect(windowOutputDim({ ...base, input: 9, autoPad: 'VALID' })).toBe(4); // pads ignored: floor(6 / 2) + 1
    expect(() => windowOutputDim({ ...base, input: 2, kernel: 5, padBegin: 0, padEnd: 0 })).toThrow(/does not fit/);
  });

  it('broadcasts with symbols', () => {
    expect(broadcastShapes(['N', 1, 4], [3, 1])).toEqual(['N', 3, 4]);
    expect(broadcastShapes(['N', 3], ['?a:0', 3])).toEqual(['N', 3]);
    expect(broadcastShapes([5], ['N'])).toEqual([5]);
    expect(() => broadcastShapes([2, 3], [4, 3])).toThrow(/do not broadcast/);
  });

  it('slices like numpy', () => {
    expect(sliceIndices(6, -1, -7, -2)).toEqual([5, 3, 1]);
    expect(sliceIndices(8, -3, 2 ** 63, 1)).toEqual([5, 6, 7]);
    expect(sliceIndices(4, 10, 20, 1)).toEqual([]);
    expect(sliceIndices(7, 0, 7, 3)).toEqual([0, 3, 6]);
    expect(sliceIndices(5, 4, -100, -1)).toEqual([4, 3, 2, 1, 0]);
    expect(sliceIndices(0, 0, 1, 1)).toEqual([]);
    expect(sliceLength(1e9, 0, 2 ** 63, 3)).toBe(333333334);
  });
});

describe('Conv', () => {
  const conv = (inputs: InputSpec[], attrs: SingleNodeCase['attrs'] = {}): SingleNodeCase => ({ opType: 'Conv', inputs, attrs });

  it('keeps a symbolic batch and counts MACs per sample', () => {
    const spec = conv([x(['N', 4, 8, 8]), x([6, 2, 3, 3]), x([6])], { group: a.int(2), pads: a.ints([1, 1, 1, 1]) });
    expect(shapeOf(spec)).toEqual(['N', 6, 8, 8]);
    expect(macsOf(spec)).toBe(6 * 8 * 8 * 2 * 9); // out elems × Cin/group × kernel
  });

  it('keeps a symbolic spatial dim only for a same-size window', () => {
    expect(shapeOf(conv([x([1, 2, 'H', 'W']), x([3, 2, 3, 3])], { pads: a.ints([1, 1, 1, 1]) }))).toEqual([1, 3, 'H', 'W']);
    const strided = shapeOf(conv([x([1, 2, 'H', 8]), x([3, 2, 3, 3])], { strides: a.ints([2, 2]) }));
    expect(isFresh(strided?.[2])).toBe(true);
    expect(strided?.[3]).toBe(3);
  });

  it('rejects mismatched channels, ranks, bias and attributes', () => {
    fails(conv([x([1, 3, 8, 8]), x([4, 2, 3, 3])], { group: a.int(2) }), /3 channels but weight 'x1' expects 2 × group 2 = 4/);
    fails(conv([x([1, 4, 8, 8]), x([3, 2, 3, 3])], { group: a.int(2) }), /3 output channels, not divisible by group 2/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3])]), /rank 3 .* expected rank 4/);
    fails(conv([x([1, 3, 8]), x([4, 3])]), /rank 2 .* expected rank 3/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3]), x([5])]), /bias 'x2' length vs output channels: 5 does not match 4/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3])], { auto_pad: a.string('SAME') }), /auto_pad 'SAME' is not one of/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3])], { pads: a.ints([1, 1]) }), /pads has 2 values .* expected 4/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3])], { kernel_shape: a.ints([5, 5]) }), /kernel_shape \[5, 5\] does not match/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3])], { strides: a.ints([0, 1]) }), /strides must be positive/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3])], { auto_pad: a.string('SAME_UPPER'), pads: a.ints([1, 1, 1, 1]) }), /cannot be combined with auto_pad SAME_UPPER/);
    fails(conv([x([1, 3, 2, 2]), x([4, 3, 3, 3])]), /does not fit an input of 2/);
    fails(conv([x([1, 3, 8, 8], 'int32'), x([4, 3, 3, 3], 'int32')]), /has type int32; Conv takes/);
    fails(conv([x([1, 3, 8, 8]), x([4, 3, 3, 3], 'float64')]), /must have the same type/);
  });
});

describe('pools', () => {
  it('MaxPool gives an int64 Indices output of the same shape', () => {
    const types = inferSingleNode({ opType: 'MaxPool', outputs: 2, inputs: [x(['N', 3, 9, 9])], attrs: { kernel_shape: a.ints([3, 3]), strides: a.ints([2, 2]) } });
    expect(types).toEqual([{ dtype: 'float32', shape: ['N', 3, 4, 4] }, { dtype: 'int64', shape: ['N', 3, 4, 4] }]);
  });

  it('ignores ceil_mode before opset 10 and applies it from 10', () => {
    const spec = (opset: number): SingleNodeCase => ({ opset, opType: 'MaxPool', inputs: [x([1, 1, 8, 8])], attrs: { kernel_shape: a.ints([3, 3]), strides: a.ints([2, 2]), ceil_mode: a.int(1) } });
    expect(shapeOf(spec(8))).toEqual([1, 1, 3, 3]);
    expect(shapeOf(spec(10))).toEqual([1, 1, 4, 4]);
  });

  it('rejects a missing kernel_shape, rank < 3 and pre-19 AveragePool dilations', () => {
    fails({ opType: 'MaxPool', inputs: [x([1, 1, 4, 4])] }, /requires attribute kernel_shape/);
    fails({ opType: 'AveragePool', inputs: [x([4, 4])], attrs: { kernel_shape: a.ints([2]) } }, /rank 2 .* needs rank 3 or more/);
    fails({ opType: 'AveragePool', inputs: [x([1, 1, 4, 4])], attrs: { kernel_shape: a.ints([2, 2]), dilations: a.ints([2, 2]) } }, /dilations need opset 19/);
    fails({ opType: 'MaxPool', inputs: [x([1, 1, 4, 4])], attrs: { kernel_shape: a.ints([2, 2]), storage_order: a.int(2) } }, /storage_order must be 0 or 1/);
  });

  it('global pools keep N and C', () => {
    expect(shapeOf({ opType: 'GlobalAveragePool', inputs: [x(['N', 16, 'H', 'W'])] })).toEqual(['N', 16, 1, 1]);
    expect(shapeOf({ opType: 'GlobalMaxPool', inputs: [x([2, 3, 5])] })).toEqual([2, 3, 1]);
  });
});

describe('BatchNormalization', () => {
  const stats = [x([3]), x([3]), x([3]), x([3])];
  it('checks per-channel vectors against the channel axis', () => {
    expect(shapeOf({ opType: 'BatchNormalization', inputs: [x(['N', 3, 4, 4]), ...stats] })).toEqual(['N', 3, 4, 4]);
    fails({ opType: 'BatchNormalization', inputs: [x([1, 4, 2, 2]), ...stats] }, /'x1' length vs the 4 channels of 'x0': 4 does not match 3/);
    fails({ opType: 'BatchNormalization', inputs: [x([1, 3, 2, 2]), x([3, 1]), x([3]), x([3]), x([3])] }, /rank 2 .* expected rank 1/);
  });
  it('has running statistics outputs only in training mode (opset 14+)', () => {
    const training = { opset: 15, opType: 'BatchNormalization', outputs: 3, inputs: [x([2, 3, 4]), ...stats] };
    expect(inferSingleNode({ ...training, attrs: { training_mode: a.int(1) } })[2]).toEqual({ dtype: 'float32', shape: [3] });
    fails(training, /running_mean\/running_var exist only with training_mode=1/);
  });
});

describe('elementwise', () => {
  it('keeps type and shape for activations and checks dtypes', () => {
    expect(inferSingleNode({ opType: 'HardSwish', inputs: [x(['N', 8])] })).toEqual([{ dtype: 'float32', shape: ['N', 8] }]);
    fails({ opType: 'Sigmoid', inputs: [x([2], 'int64')] }, /has type int64; Sigmoid takes/);
    fails({ opset: 13, opType: 'Relu', inputs: [x([2], 'int32')] }, /has type int32; Relu takes/);
    expect(dtypeOf({ opset: 14, opType: 'Relu', inputs: [x([2], 'int32')] })).toBe('int32');
  });

  it('parses LeakyRelu / HardSigmoid defaults', () => {
    const node = (opType: string) => ({ name: 'n', opType, domain: '', inputs: ['x'], outputs: ['y'], attributes: {} });
    expect(OPS.LeakyRelu.parseAttrs(node('LeakyRelu'), 17)).toEqual({ alpha: 0.01 });
    expect(OPS.HardSigmoid.parseAttrs(node('HardSigmoid'), 17)).toEqual({ alpha: 0.2, beta: 0.5 });
    expect(OPS.Clip.parseAttrs(node('Clip'), 6)).toEqual({ min: -3.4028234663852886e38, max: 3.4028234663852886e38 });
  });

  it('checks Clip bounds', () => {
    fails({ opset: 13, opType: 'Clip', inputs: [x([4]), x([2])] }, /bound 'x1' must be a scalar/);
    fails({ opset: 13, opType: 'Clip', inputs: [x([4]), c.i64([0], [])] }, /bound 'x1' has type int64, but x is float32/);
    fails({ opset: 10, opType: 'Clip', inputs: [x([4]), c.f32([0], [])] }, /takes min\/max as attributes/);
  });

  it('broadcasts binary ops and rejects bad operands', () => {
    expect(shapeOf({ opType: 'Mul', inputs: [x(['N', 8, 4, 4]), x(['N', 8, 1, 1])] })).toEqual(['N', 8, 4, 4]);
    fails({ opType: 'Add', inputs: [x([2, 3]), x([4])] }, /shapes \[2, 3\] and \[4\] do not broadcast/);
    fails({ opType: 'Sub', inputs: [x([2]), x([2], 'float64')] }, /must have the same type/);
    fails({ opType: 'Add', inputs: [x([2], 'bool'), x([2], 'bool')] }, /has type bool; Add takes/);
  });

  it('follows opset < 7 broadcasting: B matches A from axis', () => {
    const legacy = (b: Dim[], attrs: SingleNodeCase['attrs']): SingleNodeCase => ({ opset: 6, opType: 'Add', inputs: [x([2, 3, 4, 5]), x(b)], attrs });
    expect(shapeOf(legacy([3, 4], { broadcast: a.int(1), axis: a.int(1) }))).toEqual([2, 3, 4, 5]);
    expect(shapeOf(legacy([5], { broadcast: a.int(1) }))).toEqual([2, 3, 4, 5]);
    fails(legacy([3, 4], { broadcast: a.int(1) }), /does not match A .* under opset < 7 broadcasting/);
    fails(legacy([5], {}), /rank|does not match/);
  });

  it('folds known values with broadcasting; integer Div truncates', () => {
    expect(knownOf({ opType: 'Div', inputs: [c.i64([-7, 7, 9]), c.i64([2], [])] })).toEqual([-3, 3, 4]);
    expect(knownOf({ opType: 'Mul', inputs: [c.i64([1, 2], [2, 1]), c.i64([3, 4, 5])] })).toEqual([3, 4, 5, 6, 8, 10]);
    expect(knownOf({ opType: 'Sub', inputs: [c.i64([10, 20]), c.i64([1, 2])] })).toEqual([9, 18]);
    expect(knownOf({ opType: 'Div', inputs: [c.i64([1]), c.i64([0])] })).toBeUndefined();
  });
});

describe('Concat and Split', () => {
  it('sums the axis, merges the others, and gives a fresh dim for symbolic sums', () => {
    expect(shapeOf({ opType: 'Concat', inputs: [x(['N', 3]), x([2, 5])], attrs: { axis: a.int(1) } })).toEqual([2, 8]);
    const symbolic = shapeOf({ opType: 'Concat', inputs: [x(['N', 3]), x([2, 3])], attrs: { axis: a.int(0) } });
    expect(isFresh(symbolic?.[0])).toBe(true);
    fails({ opType: 'Concat', inputs: [x([2, 3]), x([2, 3])] }, /requires attribute axis/);
    fails({ opType: 'Concat', inputs: [x([2, 3]), x([2, 3, 1])], attrs: { axis: a.int(0) } }, /'x1' has rank 3, but 'x0' has rank 2/);
    fails({ opType: 'Concat', inputs: [x([2, 3]), x([2, 4])], attrs: { axis: a.int(0) } }, /axis 1 of 'x1' vs 'x0': 3 does not match 4/);
    fails({ opType: 'Concat', inputs: [x([2, 3]), x([2, 3])], attrs: { axis: a.int(2) } }, /axis 2 is out of range for rank 2/);
  });

  it('folds known vectors, symbols included', () => {
    expect(knownOf({ opType: 'Concat', inputs: [c.i64([1, 2]), c.i64([3])], attrs: { axis: a.int(0) } })).toEqual([1, 2, 3]);
    expect(knownOf({ opType: 'Concat', inputs: [c.i64([1, 2], [1, 2]), c.i64([3, 4], [1, 2])], attrs: { axis: a.int(0) } })).toEqual([1, 2, 3, 4]);
    expect(knownOf({ opType: 'Concat', inputs: [c.i64([1, 2], [2, 1]), c.i64([3, 4], [2, 1])], attrs: { axis: a.int(1) } })).toEqual([1, 3, 2, 4]);
  });

  it('splits by sizes or equally, and rejects sizes that do not add up', () => {
    const parts = inferSingleNode({ opset: 13, opType: 'Split', outputs: 2, inputs: [x(['N', 5]), c.i64([2, 3])], attrs: { axis: a.int(-1) } });
    expect(parts.map((t) => t.shape)).toEqual([['N', 2], ['N', 3]]);
    expect(knownOf({ opset: 13, opType: 'Split', outputs: 2, inputs: [c.i64([4, 5, 6]), c.i64([1, 2])] }, 1)).toEqual([5, 6]);
    fails({ opset: 13, opType: 'Split', outputs: 2, inputs: [x([5]), c.i64([2, 2])] }, /sum to 4, but the axis has 5/);
    fails({ opset: 13, opType: 'Split', outputs: 2, inputs: [x([5])] }, /an axis of 5 does not split into 2 equal parts/);
    fails({ opset: 18, opType: 'Split', outputs: 2, inputs: [x([6])], attrs: { num_outputs: a.int(3) } }, /num_outputs is 3, but the node has 2 outputs/);
    // ORT refuses this too ("Split size 2 exceeds the remaining size").
    fails({ opset: 18, opType: 'Split', outputs: 4, inputs: [x([5])], attrs: { num_outputs: a.int(4) } }, /chunks of 2 leave the last output empty/);
  });
});

describe('Flatten, Reshape, Transpose, Squeeze, Unsqueeze', () => {
  it('Flatten keeps the batch symbol', () => {
    expect(shapeOf({ opType: 'Flatten', inputs: [x(['N', 16, 2, 2])] })).toEqual(['N', 64]);
    expect(shapeOf({ opType: 'Flatten', inputs: [x(['N', 'C', 2])], attrs: { axis: a.int(0) } })?.[0]).toBe(1);
    fails({ opType: 'Flatten', inputs: [x([2, 3])], attrs: { axis: a.int(3) } }, /axis 3 is out of range for rank 2/);
  });

  it('Reshape cancels symbols for -1 and knows only the rank of unknown shapes', () => {
    expect(shapeOf({ opType: 'Reshape', inputs: [x(['N', 16, 2, 2]), c.i64([0, -1])] })).toEqual(['N', 64]);
    expect(shapeOf({ opType: 'Reshape', inputs: [x(['N', 6]), c.i64([-1, 3])] })).toEqual([expect.stringMatching(/^\?/), 3]);
    const unknown = shapeOf({ opType: 'Reshape', inputs: [x([2, 6]), x([3], 'int64')] });
    expect(unknown).toHaveLength(3);
    expect(unknown!.every(isFresh)).toBe(true);
    fails({ opType: 'Reshape', inputs: [x([2, 6]), c.i64([-1, -1])] }, /more than one -1/);
    fails({ opType: 'Reshape', inputs: [x([2, 6]), c.i64([5, 2])] }, /\(12 elements\) to \[5, 2\] \(10 elements\)/);
    fails({ opType: 'Reshape', inputs: [x([2, 6]), c.i64([5, -1])] }, /does not divide/);
    fails({ opType: 'Reshape', inputs: [x([2, 6]), c.i64([0, -1])], attrs: { allowzero: a.int(1) } }, /both 0 and -1/);
    fails({ opType: 'Reshape', inputs: [x([2, 6]), { value: makeTensor('int32', [1], Int32Array.of(12)) }] }, /must be int64/);
  });

  it('Transpose validates perm', () => {
    expect(shapeOf({ opType: 'Transpose', inputs: [x(['N', 3, 4])], attrs: { perm: a.ints([2, 0, 1]) } })).toEqual([4, 'N', 3]);
    fails({ opType: 'Transpose', inputs: [x([2, 3, 4])], attrs: { perm: a.ints([0, 0, 1]) } }, /not a permutation/);
  });

  it('Squeeze refuses sizes other than 1 and is unsure of symbols', () => {
    fails({ opset: 13, opType: 'Squeeze', inputs: [x([2, 3]), c.i64([0])] }, /cannot squeeze axis 0 of 'x0': it has size 2/);
    expect(shapeOf({ opset: 13, opType: 'Squeeze', inputs: [x(['N', 1])] })).toBeUndefined();
    expect(shapeOf({ opset: 13, opType: 'Squeeze', inputs: [x(['N', 1]), c.i64([-1])] })).toEqual(['N']);
  });

  it('Unsqueeze normalizes against the output rank and folds', () => {
    expect(shapeOf({ opset: 13, opType: 'Unsqueeze', inputs: [x(['N', 3]), c.i64([-1, 0])] })).toEqual([1, 'N', 3, 1]);
    fails({ opset: 13, opType: 'Unsqueeze', inputs: [x([3]), c.i64([3])] }, /value 3 is out of range for rank 2/);
    fails({ opset: 13, opType: 'Unsqueeze', inputs: [x([3]), c.i64([0, 0])] }, /repeats an axis/);
    fails({ opset: 11, opType: 'Unsqueeze', inputs: [x([3])] }, /requires attribute axes/);
    expect(knownOf({ opset: 13, opType: 'Unsqueeze', inputs: [c.i64([5], []), c.i64([0])] })).toEqual([5]);
  });
});

describe('Gemm and MatMul', () => {
  it('count M × N × K MACs, per sample with a symbolic batch', () => {
    expect(macsOf({ opType: 'Gemm', inputs: [x([4, 6]), x([5, 6]), x([5])], attrs: { transB: a.int(1) } })).toBe(4 * 5 * 6);
    expect(macsOf({ opType: 'Gemm', inputs: [x(['N', 6]), x([5, 6])], attrs: { transB: a.int(1) } })).toBe(5 * 6);
    expect(macsOf({ opType: 'MatMul', inputs: [x([2, 3, 4]), x([4, 5])] })).toBe(2 * 3 * 5 * 4);
    expect(macsOf({ opType: 'MatMul', inputs: [x([4]), x([4])] })).toBe(4);
    expect(macsOf({ opType: 'Relu', inputs: [x([100])] })).toBe(0);
  });

  it("takes an A of unknown shape as rank 2 (torch's .squeeze() before the classifier)", () => {
    const g = emptyGraph('squeeze_gemm', 11);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 8, 1, 1] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.initializers.set('W', float32([10, 8], new Array(80).fill(0.1)));
    g.nodes = [
      { name: 'squeeze', opType: 'Squeeze', domain: '', inputs: ['x'], outputs: ['s'], attributes: {} },
      { name: 'fc', opType: 'Gemm', domain: '', inputs: ['s', 'W'], outputs: ['y'], attributes: { transB: { type: 'int', value: 1 } } },
    ];
    const facts = inferShapes(g);
    expect(facts.types.get('s')?.shape).toBeUndefined();
    const y = facts.types.get('y')!.shape!;
    expect(y).toHaveLength(2);
    expect(isFresh(y[0])).toBe(true);
    expect(y[1]).toBe(10);
    expect(facts.totalMacs).toBe(80);
  });

  it('rejects mismatched inner dims and bad ranks', () => {
    fails({ opType: 'Gemm', inputs: [x([4, 6]), x([5, 6])] }, /\(K\): 6 does not match 5/);
    fails({ opType: 'Gemm', inputs: [x([2, 4, 6]), x([6, 5])] }, /rank 3 .* expected rank 2/);
    fails({ opType: 'Gemm', inputs: [x([4, 6]), x([6, 5]), x([3])] }, /C 'x2' of shape \[3\] does not broadcast to \[4, 5\]/);
    fails({ opset: 9, opType: 'Gemm', inputs: [x([4, 6]), x([6, 5])] }, /requires input C/);
    fails({ opType: 'MatMul', inputs: [x([3, 4]), x([5, 6])] }, /\(K\): 4 does not match 5/);
    fails({ opType: 'MatMul', inputs: [x([]), x([5, 6])] }, /rank 1 or more/);
    fails({ opType: 'MatMul', inputs: [x([2, 3, 4]), x([3, 4, 5])] }, /do not broadcast/);
  });
});

describe('Softmax, Dropout, Identity', () => {
  it('checks the Softmax axis', () => {
    fails({ opType: 'Softmax', inputs: [x([2, 3])], attrs: { axis: a.int(2) } }, /axis 2 is out of range for rank 2/);
    expect(OPS.Softmax.parseAttrs({ name: 'n', opType: 'Softmax', domain: '', inputs: [], outputs: [], attributes: {} }, 11)).toEqual({ axis: 1 });
  });

  it('types the Dropout mask by opset', () => {
    expect(dtypeOf({ opset: 9, opType: 'Dropout', outputs: 2, inputs: [x([2])] }, 1)).toBe('float32');
    expect(dtypeOf({ opset: 12, opType: 'Dropout', outputs: 2, inputs: [x([2])] }, 1)).toBe('bool');
    fails({ opset: 10, opType: 'Dropout', inputs: [x([2])], attrs: { ratio: a.float(1.5) } }, /ratio must be in \[0, 1\)/);
    fails({ opset: 13, opType: 'Dropout', inputs: [x([2]), null, x([], 'float32')] }, /training_mode 'x2' must be bool/);
  });

  it('Identity passes known values through', () => {
    expect(knownOf({ opType: 'Identity', inputs: [c.i64([3, 4])] })).toEqual([3, 4]);
  });
});

describe('Constant, Shape, Gather, Cast, ConstantOfShape (shape subgraphs)', () => {
  it('reads each Constant form', () => {
    expect(inferSingleNode({ opType: 'Constant', inputs: [], attrs: { value_floats: a.floats([1, 2]) } })).toEqual([{ dtype: 'float32', shape: [2] }]);
    expect(knownOf({ opType: 'Constant', inputs: [], attrs: { value_ints: a.ints([1, -1]) } })).toEqual([1, -1]);
    expect(knownOf({ opType: 'Constant', inputs: [], attrs: { value_int: a.int(7) } })).toEqual([7]);
    expect(knownOf({ opType: 'Constant', inputs: [], attrs: { value: a.tensor(float32([1], [1])) } })).toBeUndefined();
    fails({ opType: 'Constant', inputs: [], attrs: {} }, /needs exactly one of value, .* it has none/);
    fails({ opType: 'Constant', inputs: [], attrs: { value_int: a.int(1), value_float: a.float(1) } }, /it has value_float, value_int/);
    fails({ opType: 'Constant', inputs: [], attrs: { value_int: a.float(1) } }, /attribute 'value_int' of Constant node 'node' is float, expected int/);
  });

  it('Shape yields the dims as known values, symbols included, sliced from opset 15', () => {
    expect(knownOf({ opType: 'Shape', inputs: [x(['N', 3, 4])] })).toEqual(['N', 3, 4]);
    expect(knownOf({ opset: 15, opType: 'Shape', inputs: [x(['N', 3, 4])], attrs: { start: a.int(-2) } })).toEqual([3, 4]);
    expect(knownOf({ opset: 13, opType: 'Shape', inputs: [x(['N', 3, 4])], attrs: { start: a.int(-2) } })).toEqual(['N', 3, 4]);
  });

  it('Gather folds with negative indices and rejects out-of-range ones', () => {
    expect(knownOf({ opType: 'Gather', inputs: [c.i64([4, 5, 6]), c.i64([-1, 0])] })).toEqual([6, 4]);
    expect(knownOf({ opType: 'Gather', inputs: [c.i64([1, 2, 3, 4], [2, 2]), c.i64([1], [])], attrs: { axis: a.int(1) } })).toEqual([2, 4]);
    fails({ opType: 'Gather', inputs: [x([3]), c.i64([3])] }, /out of range for an axis of 3/);
    fails({ opType: 'Gather', inputs: [x([3]), x([1])] }, /must be int32 or int64, got float32/);
  });

  it('Cast maps ONNX type codes and folds', () => {
    expect(dtypeOf({ opType: 'Cast', inputs: [x([2])], attrs: { to: a.int(11) } })).toBe('float64');
    expect(dtypeOf({ opset: 1, opType: 'Cast', inputs: [x([2])], attrs: { to: a.string('INT64') } })).toBe('int64');
    expect(knownOf({ opType: 'Cast', inputs: [c.i64([3, 4])], attrs: { to: a.int(1) } })).toEqual([3, 4]);
    fails({ opType: 'Cast', inputs: [x([2])], attrs: { to: a.int(17) } }, /to 17 is not an element type slimkit handles/);
    fails({ opType: 'Cast', inputs: [x([2])] }, /requires attribute to/);
  });

  it('ConstantOfShape takes the shape from its input and folds int values', () => {
    expect(inferSingleNode({ opType: 'ConstantOfShape', inputs: [c.i64([2, 2])], attrs: { value: a.tensor(int64([1], [3])) } })).toEqual([{ dtype: 'int64', shape: [2, 2] }]);
    expect(knownOf({ opType: 'ConstantOfShape', inputs: [c.i64([3])], attrs: { value: a.tensor(int64([1], [1])) } })).toEqual([1, 1, 1]);
    fails({ opType: 'ConstantOfShape', inputs: [c.i64([2, -1])] }, /negative dim/);
    fails({ opType: 'ConstantOfShape', inputs: [c.i64([2])], attrs: { value: a.tensor(float32([2], [1, 2])) } }, /one element, got 2/);
  });
});

describe('QuantizeLinear and DequantizeLinear', () => {
  const i8 = (values: number[], dims = [values.length]): InputSpec => ({ value: makeTensor('int8', dims, Int8Array.from(values)) });
  it('take the output type from the zero point', () => {
    expect(dtypeOf({ opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1], [])] })).toBe('uint8');
    expect(dtypeOf({ opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1], []), i8([0], [])] })).toBe('int8');
    expect(dtypeOf({ opset: 13, opType: 'DequantizeLinear', inputs: [x([2], 'int8'), c.f32([0.1], [])] })).toBe('float32');
    expect(dtypeOf({ opset: 19, opType: 'DequantizeLinear', inputs: [x([2], 'int8'), { value: makeTensor('float16', [], Uint16Array.of(0x3c00)) }] })).toBe('float16');
  });

  it('check per-axis scales and zero points', () => {
    fails({ opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1, 0.2])] }, /per-axis scale 'x1' length vs axis 1 of x: 2 does not match 3/);
    fails({ opset: 10, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1, 0.2, 0.3])] }, /must be a scalar before opset 13/);
    fails({ opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1, 0.2, 0.3]), i8([0, 0])] }, /zero point 'x2' vs scale 'x1' axis 0: 3 does not match 2/);
    fails({ opset: 13, opType: 'QuantizeLinear', inputs: [x([2]), c.f32([0.1], []), { value: makeTensor('int32', [], Int32Array.of(0)) }] }, /has type int32; QuantizeLinear at opset 13 gives uint8 or int8/);
    fails({ opset: 13, opType: 'DequantizeLinear', inputs: [x([2], 'uint8'), c.f32([0.1], []), i8([0], [])] }, /zero point 'x2' has type int8, but x is uint8/);
    fails({ opset: 13, opType: 'DequantizeLinear', inputs: [x([2], 'float32'), c.f32([0.1], [])] }, /has type float32; DequantizeLinear takes/);
  });
});

describe('ReduceMean, Slice, Pad', () => {
  it('ReduceMean with unknown axes keeps only the rank', () => {
    const dims = shapeOf({ opset: 18, opType: 'ReduceMean', inputs: [x([2, 3]), x([1], 'int64')] });
    expect(dims).toHaveLength(2);
    fails({ opset: 13, opType: 'ReduceMean', inputs: [x([2, 3])], attrs: { axes: a.ints([1, -1]) } }, /repeats an axis/);
  });

  it('Slice keeps a symbol on a whole-axis slice, folds known vectors, rejects step 0', () => {
    expect(shapeOf({ opType: 'Slice', inputs: [x(['N', 8]), c.i64([0, 2]), c.i64([2 ** 63, 6])] })).toEqual(['N', 4]);
    expect(knownOf({ opType: 'Slice', inputs: [c.i64([2, 3, 4, 5]), c.i64([-2]), c.i64([2 ** 63])] })).toEqual([4, 5]);
    fails({ opType: 'Slice', inputs: [x([4]), c.i64([0]), c.i64([4]), c.i64([0]), c.i64([0])] }, /steps must not be 0/);
    fails({ opType: 'Slice', inputs: [x([4]), c.i64([0]), c.i64([4, 4])] }, /must have the same length/);
  });

  it('Pad checks the pads length', () => {
    fails({ opType: 'Pad', inputs: [x([2, 3]), c.i64([1, 1])] }, /pads has 2 values .* expected 4/);
    fails({ opType: 'Pad', inputs: [x([2, 3])], attrs: { mode: a.string('mirror') } }, /mode 'mirror' is not one of/);
    expect(shapeOf({ opType: 'Pad', inputs: [x(['N', 3]), c.i64([0, 1, 0, 1])] })).toEqual(['N', 5]);
  });
});
