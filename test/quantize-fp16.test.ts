/**
 * Full float16 conversion of float values that attributes make, not initializers: ConstantOfShape
 * (torch.full over a dynamic batch) and Constant's value_float / value_floats. Oracle: ONNX Runtime
 * on the float32 model (fp16 rounding only).
 */
import { describe, expect, it } from 'vitest';
import { convertFloat16 } from '../src/compress/quantize/index.js';
import { emptyGraph } from '../src/onnx/graph.js';
import { float32, int64, makeTensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { maxAbsDiff, randomInput } from './helpers/fixtures.js';

describe('convertFloat16 (full)', () => {
  it('converts ConstantOfShape and value_float/value_floats Constants with the rest', async () => {
    const g = emptyGraph('attr_floats', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.initializers.set('W', float32([3, 4], [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2]));
    g.initializers.set('zero', int64([1], [0]));
    g.initializers.set('three', int64([1], [3]));
    g.nodes = [
      { name: 'fc', opType: 'Gemm', domain: '', inputs: ['x', 'W'], outputs: ['h'], attributes: { transB: { type: 'int', value: 1 } } },
      { name: 'shape', opType: 'Shape', domain: '', inputs: ['x'], outputs: ['s'], attributes: {} },
      { name: 'n', opType: 'Gather', domain: '', inputs: ['s', 'zero'], outputs: ['n'], attributes: {} },
      { name: 'dims', opType: 'Concat', domain: '', inputs: ['n', 'three'], outputs: ['dims'], attributes: { axis: { type: 'int', value: 0 } } },
      { name: 'full', opType: 'ConstantOfShape', domain: '', inputs: ['dims'], outputs: ['half'], attributes: { value: { type: 'tensor', value: makeTensor('float32', [1], Float32Array.of(0.5)) } } },
      { name: 'two', opType: 'Constant', domain: '', inputs: [], outputs: ['two'], attributes: { value_float: { type: 'float', value: 2 } } },
      { name: 'bias', opType: 'Constant', domain: '', inputs: [], outputs: ['bias'], attributes: { value_floats: { type: 'floats', value: [0.25, -0.25, 1] } } },
      { name: 'add', opType: 'Add', domain: '', inputs: ['h', 'half'], outputs: ['a'], attributes: {} },
      { name: 'mul', opType: 'Mul', domain: '', inputs: ['a', 'two'], outputs: ['m'], attributes: {} },
      { name: 'add2', opType: 'Add', domain: '', inputs: ['m', 'bias'], outputs: ['y'], attributes: {} },
    ];
    const x = randomInput([5, 4], 3);
    const [want] = Object.values(await runGraph(g, { x }));
    const half = convertFloat16(g, 'full').graph;
    const [got] = Object.values(await runGraph(half, { x }));
    expect(got!.dims).toEqual([5, 3]);
    expect(maxAbsDiff(got!, want!)).toBeLessThan(0.02);
  });
});
