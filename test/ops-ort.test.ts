/**
 * Shape inference vs ONNX Runtime: every case is a one-node graph run in onnxruntime-node on random
 * inputs; slimkit's inferred output dims and dtypes must equal ORT's exactly.
 */
import { describe, expect, it } from 'vitest';
import type { DType } from '../src/onnx/dtype.js';
import type { Dim } from '../src/onnx/graph.js';
import { float32, int64, makeTensor } from '../src/onnx/tensor.js';
import { a, c, runSingleNode, type InputSpec, type SingleNodeCase } from './helpers/single-node.js';

const x = (shape: Dim[], dtype: DType = 'float32'): InputSpec => ({ dtype, shape });
const INT64_MAX = 9223372036854775807;

type Case = SingleNodeCase & { label: string };
const cases: Record<string, Case[]> = {
  Conv: [
    { label: '3x3 pad 1 with bias', opType: 'Conv', inputs: [x([2, 3, 8, 8]), x([4, 3, 3, 3]), x([4])], attrs: { pads: a.ints([1, 1, 1, 1]) } },
    { label: 'stride 2, asymmetric pads, no bias', opType: 'Conv', inputs: [x([1, 3, 9, 8]), x([5, 3, 3, 3])], attrs: { strides: a.ints([2, 2]), pads: a.ints([0, 1, 2, 0]) } },
    { label: 'dilation 2', opType: 'Conv', inputs: [x([1, 2, 10, 9]), x([3, 2, 3, 3])], attrs: { dilations: a.ints([2, 2]) } },
    { label: 'dilation 3, stride 2, pads 2', opType: 'Conv', inputs: [x([1, 2, 13, 11]), x([3, 2, 3, 2])], attrs: { dilations: a.ints([3, 2]), strides: a.ints([2, 3]), pads: a.ints([2, 2, 2, 2]) } },
    { label: 'group 2', opType: 'Conv', inputs: [x([1, 4, 7, 7]), x([6, 2, 3, 3])], attrs: { group: a.int(2) } },
    { label: 'depthwise with kernel_shape', opType: 'Conv', inputs: [x([1, 4, 6, 6]), x([4, 1, 3, 3]), x([4])], attrs: { group: a.int(4), kernel_shape: a.ints([3, 3]), pads: a.ints([1, 1, 1, 1]) } },
    { label: 'SAME_UPPER stride 2', opType: 'Conv', inputs: [x([1, 2, 7, 7]), x([2, 2, 3, 3])], attrs: { auto_pad: a.string('SAME_UPPER'), strides: a.ints([2, 2]) } },
    { label: 'SAME_LOWER stride 2, kernel 4', opType: 'Conv', inputs: [x([1, 2, 8, 9]), x([2, 2, 4, 4])], attrs: { auto_pad: a.string('SAME_LOWER'), strides: a.ints([2, 2]) } },
    { label: 'VALID stride 2', opType: 'Conv', inputs: [x([1, 2, 9, 10]), x([2, 2, 3, 3])], attrs: { auto_pad: a.string('VALID'), strides: a.ints([2, 2]) } },
    { label: '1-D stride 2 pads 1', opType: 'Conv', inputs: [x([2, 3, 10]), x([5, 3, 3]), x([5])], attrs: { strides: a.ints([2]), pads: a.ints([1, 1]) } },
    { label: '3-D', opType: 'Conv', inputs: [x([1, 2, 5, 6, 7]), x([3, 2, 3, 3, 3])], attrs: { strides: a.ints([1, 2, 2]), pads: a.ints([1, 1, 1, 1, 1, 1]) } },
    { label: 'symbolic batch', opType: 'Conv', inputs: [x(['N', 3, 8, 8], 'float32'), x([4, 3, 1, 1])], attrs: {} },
    { label: 'opset 11', opset: 11, opType: 'Conv', inputs: [x([1, 3, 6, 6]), x([2, 3, 2, 2])], attrs: { strides: a.ints([2, 2]) } },
  ],
  BatchNormalization: [
    { label: 'NCHW', opType: 'BatchNormalization', inputs: [x([2, 3, 4, 5]), x([3]), x([3]), x([3]), c.f32([1, 2, 3])] },
    { label: 'NC, epsilon', opType: 'BatchNormalization', inputs: [x([4, 3]), x([3]), x([3]), x([3]), c.f32([1, 2, 3])], attrs: { epsilon: a.float(1e-3) } },
    { label: 'opset 9', opset: 9, opType: 'BatchNormalization', inputs: [x([1, 2, 3, 3]), x([2]), x([2]), x([2]), c.f32([1, 2])] },
    { label: 'training mode outputs', opset: 15, opType: 'BatchNormalization', outputs: 3, inputs: [x([2, 3, 4]), x([3]), x([3]), x([3]), c.f32([1, 2, 3])], attrs: { training_mode: a.int(1) } },
  ],
  Activations: [
    { label: 'Relu', opType: 'Relu', inputs: [x([2, 3, 4])] },
    { label: 'Relu int32 (opset 14)', opType: 'Relu', inputs: [x([5], 'int32')] },
    { label: 'Sigmoid scalar', opType: 'Sigmoid', inputs: [x([])] },
    { label: 'LeakyRelu', opType: 'LeakyRelu', inputs: [x([3, 1, 2])], attrs: { alpha: a.float(0.1) } },
    { label: 'HardSigmoid', opType: 'HardSigmoid', inputs: [x([4, 5])], attrs: { alpha: a.float(1 / 6) } },
    { label: 'HardSwish', opType: 'HardSwish', inputs: [x([1, 8, 2, 2])] },
    { label: 'Identity int64', opType: 'Identity', inputs: [x([3], 'int64')] },
  ],
  Clip: [
    { label: 'opset 6 attributes', opset: 6, opType: 'Clip', inputs: [x([2, 3])], attrs: { min: a.float(0), max: a.float(6) } },
    { label: 'opset 13 min and max inputs', opset: 13, opType: 'Clip', inputs: [x([2, 3, 4]), c.f32([0], []), c.f32([6], [])] },
    { label: 'opset 13 max only', opset: 13, opType: 'Clip', inputs: [x([5]), null, c.f32([1], [])] },
    { label: 'opset 13 int32', opset: 13, opType: 'Clip', inputs: [x([4], 'int32'), c.of(makeTensor('int32', [], Int32Array.of(1)))] },
  ],
  Arithmetic: [
    { label: 'Add trailing broadcast', opType: 'Add', inputs: [x([2, 3, 4]), x([4])] },
    { label: 'Mul two-way broadcast', opType: 'Mul', inputs: [x([2, 1, 4]), x([3, 1])] },
    { label: 'Sub scalar', opType: 'Sub', inputs: [x([]), x([2, 2])] },
    { label: 'Div int64', opType: 'Div', inputs: [x([3], 'int64'), c.i64([2, -2, 3])] },
    { label: 'Add symbolic batch', opType: 'Add', inputs: [x(['N', 3]), x([1, 3])] },
  ],
  Concat: [
    { label: 'axis 1', opType: 'Concat', inputs: [x([2, 3, 4]), x([2, 5, 4])], attrs: { axis: a.int(1) } },
    { label: 'axis -1, three inputs', opType: 'Concat', inputs: [x([2, 1]), x([2, 3]), x([2, 2])], attrs: { axis: a.int(-1) } },
    { label: 'int64 vectors', opType: 'Concat', inputs: [c.i64([1]), x([2], 'int64')], attrs: { axis: a.int(0) } },
  ],
  Split: [
    { label: 'opset 13 split input', opset: 13, opType: 'Split', outputs: 2, inputs: [x([2, 5]), c.i64([2, 3])], attrs: { axis: a.int(1) } },
    { label: 'opset 13 equal parts', opset: 13, opType: 'Split', outputs: 3, inputs: [x([6, 2])] },
    { label: 'opset 11 split attribute, negative axis', opset: 11, opType: 'Split', outputs: 3, inputs: [x([2, 6])], attrs: { axis: a.int(-1), split: a.ints([1, 4, 1]) } },
    { label: 'opset 18 num_outputs uneven', opset: 18, opType: 'Split', outputs: 3, inputs: [x([7, 2])], attrs: { num_outputs: a.int(3) } },
  ],
  MaxPool: [
    { label: '2x2 stride 2', opType: 'MaxPool', inputs: [x([1, 3, 8, 8])], attrs: { kernel_shape: a.ints([2, 2]), strides: a.ints([2, 2]) } },
    { label: 'ceil_mode 7x7 k3 s2', opType: 'MaxPool', inputs: [x([1, 1, 7, 8])], attrs: { kernel_shape: a.ints([3, 3]), strides: a.ints([2, 2]), ceil_mode: a.int(1) } },
    { label: 'ceil_mode drops a window starting in padding', opType: 'MaxPool', inputs: [x([1, 1, 5, 5])], attrs: { kernel_shape: a.ints([2, 2]), strides: a.ints([2, 2]), pads: a.ints([1, 1, 1, 1]), ceil_mode: a.int(1) } },
    { label: 'pads and dilations', opType: 'MaxPool', inputs: [x([1, 2, 9, 10])], attrs: { kernel_shape: a.ints([3, 3]), dilations: a.ints([2, 2]), pads: a.ints([1, 0, 1, 2]) } },
    { label: 'Indices output, storage_order 1', opType: 'MaxPool', outputs: 2, inputs: [x([2, 2, 6, 6])], attrs: { kernel_shape: a.ints([2, 2]), strides: a.ints([2, 2]), storage_order: a.int(1) } },
    { label: 'SAME_UPPER', opType: 'MaxPool', inputs: [x([1, 1, 7, 7])], attrs: { kernel_shape: a.ints([3, 3]), strides: a.ints([2, 2]), auto_pad: a.string('SAME_UPPER') } },
    { label: '1-D', opType: 'MaxPool', inputs: [x([2, 3, 11])], attrs: { kernel_shape: a.ints([3]), strides: a.ints([2]) } },
    { label: '3-D', opType: 'MaxPool', inputs: [x([1, 1, 4, 5, 6])], attrs: { kernel_shape: a.ints([2, 2, 2]), strides: a.ints([2, 2, 2]) } },
    { label: 'int8 (opset 12)', opType: 'MaxPool', inputs: [x([1, 1, 4, 4], 'int8')], attrs: { kernel_shape: a.ints([2, 2]) } },
  ],
  AveragePool: [
    { label: 'count_include_pad', opType: 'AveragePool', inputs: [x([1, 2, 6, 6])], attrs: { kernel_shape: a.ints([3, 3]), pads: a.ints([1, 1, 1, 1]), count_include_pad: a.int(1) } },
    { label: 'ceil_mode', opType: 'AveragePool', inputs: [x([1, 1, 6, 7])], attrs: { kernel_shape: a.ints([3, 3]), strides: a.ints([2, 2]), ceil_mode: a.int(1) } },
    { label: 'ceil_mode with pads', opType: 'AveragePool', inputs: [x([1, 1, 5, 5])], attrs: { kernel_shape: a.ints([2, 2]), strides: a.ints([2, 2]), pads: a.ints([1, 1, 1, 1]), ceil_mode: a.int(1) } },
    { label: 'SAME_LOWER', opType: 'AveragePool', inputs: [x([1, 1, 8, 5])], attrs: { kernel_shape: a.ints([2, 3]), strides: a.ints([3, 2]), auto_pad: a.string('SAME_LOWER') } },
    { label: 'VALID 1-D', opType: 'AveragePool', inputs: [x([1, 2, 10])], attrs: { kernel_shape: a.ints([4]), strides: a.ints([3]), auto_pad: a.string('VALID') } },
    { label: 'dilations (opset 19)', opset: 19, opType: 'AveragePool', inputs: [x([1, 1, 9, 9])], attrs: { kernel_shape: a.ints([2, 2]), dilations: a.ints([3, 3]) } },
  ],
  GlobalPools: [
    { label: 'GlobalAveragePool 4-D', opType: 'GlobalAveragePool', inputs: [x([2, 3, 5, 4])] },
    { label: 'GlobalAveragePool 3-D', opType: 'GlobalAveragePool', inputs: [x([2, 3, 5])] },
    { label: 'GlobalMaxPool 5-D', opType: 'GlobalMaxPool', inputs: [x([1, 2, 3, 4, 5])] },
  ],
  Flatten: [
    { label: 'axis 1', opType: 'Flatten', inputs: [x([2, 3, 4, 5])] },
    { label: 'axis 0', opType: 'Flatten', inputs: [x([2, 3, 4])], attrs: { axis: a.int(0) } },
    { label: 'axis -1', opType: 'Flatten', inputs: [x([2, 3, 4])], attrs: { axis: a.int(-1) } },
    { label: 'axis = rank', opType: 'Flatten', inputs: [x([2, 3])], attrs: { axis: a.int(2) } },
  ],
  Reshape: [
    { label: '-1 inferred', opType: 'Reshape', inputs: [x([2, 3, 4]), c.i64([4, -1])] },
    { label: '0 copies', opType: 'Reshape', inputs: [x([2, 3, 4]), c.i64([0, -1])] },
    { label: '0, 0, split last', opType: 'Reshape', inputs: [x([2, 3, 4]), c.i64([0, 0, 2, 2])] },
    { label: 'flatten all', opType: 'Reshape', inputs: [x([2, 3, 4]), c.i64([-1])] },
    { label: 'allowzero with an empty tensor', opType: 'Reshape', inputs: [x([0, 3]), c.i64([3, 0])], attrs: { allowzero: a.int(1) } },
    { label: 'symbolic batch, [0, -1]', opType: 'Reshape', inputs: [x(['N', 4, 2]), c.i64([0, -1])] },
  ],
  Transpose: [
    { label: 'default reverses', opType: 'Transpose', inputs: [x([2, 3, 4])] },
    { label: 'NCHW → NHWC', opType: 'Transpose', inputs: [x([1, 2, 3, 4])], attrs: { perm: a.ints([0, 2, 3, 1]) } },
  ],
  Squeeze: [
    { label: 'opset 11 axes attribute', opset: 11, opType: 'Squeeze', inputs: [x([1, 3, 1, 2])], attrs: { axes: a.ints([0, -2]) } },
    { label: 'opset 13 axes input', opset: 13, opType: 'Squeeze', inputs: [x([3, 1, 2]), c.i64([1])] },
    { label: 'no axes', opset: 13, opType: 'Squeeze', inputs: [x([1, 3, 1, 1])] },
  ],
  Unsqueeze: [
    { label: 'opset 11 axes attribute', opset: 11, opType: 'Unsqueeze', inputs: [x([3, 4])], attrs: { axes: a.ints([0, 3]) } },
    { label: 'opset 13 axes input, negative', opset: 13, opType: 'Unsqueeze', inputs: [x([3, 4]), c.i64([-1])] },
    { label: 'scalar to vector', opset: 13, opType: 'Unsqueeze', inputs: [x([], 'int64'), c.i64([0])] },
    { label: 'unsorted axes', opset: 13, opType: 'Unsqueeze', inputs: [x([2, 3]), c.i64([3, 0, 2])] },
  ],
  Gemm: [
    { label: 'Linear layer: transB, C [N]', opType: 'Gemm', inputs: [x([4, 6]), x([5, 6]), x([5])], attrs: { transB: a.int(1) } },
    { label: 'transA, C [M, 1], alpha/beta', opType: 'Gemm', inputs: [x([6, 4]), x([6, 5]), x([4, 1])], attrs: { transA: a.int(1), alpha: a.float(0.5), beta: a.float(2) } },
    { label: 'no C', opType: 'Gemm', inputs: [x([3, 2]), x([2, 7])] },
    { label: 'scalar C, both transposed', opType: 'Gemm', inputs: [x([2, 3]), x([4, 2]), x([])], attrs: { transA: a.int(1), transB: a.int(1) } },
    { label: 'opset 9 with C', opset: 9, opType: 'Gemm', inputs: [x([3, 2]), x([2, 4]), x([3, 4])] },
  ],
  MatMul: [
    { label: '2-D', opType: 'MatMul', inputs: [x([3, 4]), x([4, 5])] },
    { label: 'batched left', opType: 'MatMul', inputs: [x([2, 3, 4]), x([4, 5])] },
    { label: '1-D left', opType: 'MatMul', inputs: [x([4]), x([4, 5])] },
    { label: '1-D right', opType: 'MatMul', inputs: [x([2, 3, 4]), x([4])] },
    { label: '1-D both', opType: 'MatMul', inputs: [x([4]), x([4])] },
    { label: 'batch broadcast', opType: 'MatMul', inputs: [x([2, 1, 3, 4]), x([5, 4, 2])] },
  ],
  Softmax: [
    { label: 'opset 11 default axis 1', opset: 11, opType: 'Softmax', inputs: [x([2, 3, 4])] },
    { label: 'opset 13 default axis -1', opset: 13, opType: 'Softmax', inputs: [x([2, 3, 4])] },
    { label: 'axis 0', opType: 'Softmax', inputs: [x([2, 3])], attrs: { axis: a.int(0) } },
  ],
  Dropout: [
    { label: 'opset 12 with mask', opset: 12, opType: 'Dropout', outputs: 2, inputs: [x([2, 3])] },
    { label: 'opset 13 ratio input', opset: 13, opType: 'Dropout', inputs: [x([2, 3, 4]), c.f32([0.3], [])] },
    { label: 'opset 10 with mask', opset: 10, opType: 'Dropout', outputs: 2, inputs: [x([4])], attrs: { ratio: a.float(0.2) } },
  ],
  Constant: [
    { label: 'value tensor', opType: 'Constant', inputs: [], attrs: { value: a.tensor(float32([2, 3], [1, 2, 3, 4, 5, 6])) } },
    { label: 'value_ints', opType: 'Constant', inputs: [], attrs: { value_ints: a.ints([1, 2, 3]) } },
    { label: 'value_float', opType: 'Constant', inputs: [], attrs: { value_float: a.float(2.5) } },
    { label: 'value_int', opType: 'Constant', inputs: [], attrs: { value_int: a.int(4) } },
    { label: 'int64 matrix', opType: 'Constant', inputs: [], attrs: { value: a.tensor(int64([2, 2], [1, 2, 3, 4])) } },
  ],
  Shape: [
    { label: 'rank 4', opset: 13, opType: 'Shape', inputs: [x([2, 3, 4, 5])] },
    { label: 'start 1 (opset 15)', opset: 15, opType: 'Shape', inputs: [x([2, 3, 4, 5])], attrs: { start: a.int(1) } },
    { label: 'start -2 end -1', opset: 15, opType: 'Shape', inputs: [x([2, 3, 4, 5])], attrs: { start: a.int(-2), end: a.int(-1) } },
    { label: 'end past rank, start past end', opset: 15, opType: 'Shape', inputs: [x([2, 3])], attrs: { start: a.int(3), end: a.int(10) } },
    { label: 'scalar', opType: 'Shape', inputs: [x([])] },
  ],
  Gather: [
    { label: 'scalar index on a shape vector', opType: 'Gather', inputs: [x([4], 'int64'), c.i64([0], [])] },
    { label: 'vector index axis 0', opType: 'Gather', inputs: [x([5, 4]), c.i64([1, 3])] },
    { label: '2-D indices axis 1, negative', opType: 'Gather', inputs: [x([3, 4, 5]), c.i64([-1, 0, 2, 1], [2, 2])], attrs: { axis: a.int(1) } },
    { label: 'int32 indices axis -1', opType: 'Gather', inputs: [x([3, 4]), c.of(makeTensor('int32', [3], Int32Array.of(0, 1, 1)))], attrs: { axis: a.int(-1) } },
  ],
  Cast: [
    { label: 'float → int64', opType: 'Cast', inputs: [x([2, 3])], attrs: { to: a.int(7) } },
    { label: 'int64 → float', opType: 'Cast', inputs: [x([4], 'int64')], attrs: { to: a.int(1) } },
    { label: 'float → uint8', opType: 'Cast', inputs: [x([3])], attrs: { to: a.int(2) } },
    { label: 'float → bool', opType: 'Cast', inputs: [x([3])], attrs: { to: a.int(9) } },
    { label: 'float → float16', opType: 'Cast', inputs: [x([3, 1])], attrs: { to: a.int(10) } },
  ],
  QuantizeLinear: [
    { label: 'opset 10 per tensor, default uint8', opset: 10, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1], [])] },
    { label: 'opset 13 int8 zero point', opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1], []), c.of(makeTensor('int8', [], Int8Array.of(0)))] },
    { label: 'opset 13 per axis 1', opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3, 4]), c.f32([0.1, 0.2, 0.3]), c.of(makeTensor('int8', [3], Int8Array.of(0, 1, -1)))] },
    { label: 'opset 13 per axis 0', opset: 13, opType: 'QuantizeLinear', inputs: [x([2, 3]), c.f32([0.1, 0.2]), c.of(makeTensor('uint8', [2], Uint8Array.of(128, 0)))], attrs: { axis: a.int(0) } },
    { label: 'opset 19 uint8', opset: 19, opType: 'QuantizeLinear', inputs: [x([4]), c.f32([0.5], []), c.of(makeTensor('uint8', [], Uint8Array.of(3)))] },
  ],
  DequantizeLinear: [
    { label: 'opset 10 uint8', opset: 10, opType: 'DequantizeLinear', inputs: [x([2, 3], 'uint8'), c.f32([0.1], []), c.of(makeTensor('uint8', [], Uint8Array.of(1)))] },
    { label: 'opset 13 per axis int8', opset: 13, opType: 'DequantizeLinear', inputs: [x([4, 3, 2, 2], 'int8'), c.f32([0.1, 0.2, 0.3, 0.4]), c.of(makeTensor('int8', [4], Int8Array.of(0, 0, 0, 0)))], attrs: { axis: a.int(0) } },
    { label: 'opset 13 int32 bias', opset: 13, opType: 'DequantizeLinear', inputs: [x([5], 'int32'), c.f32([0.01], [])] },
  ],
  ReduceMean: [
    { label: 'axes [2, 3] keepdims', opset: 13, opType: 'ReduceMean', inputs: [x([2, 3, 4, 5])], attrs: { axes: a.ints([2, 3]) } },
    { label: 'axes [-1, 0] no keepdims', opset: 13, opType: 'ReduceMean', inputs: [x([2, 3, 4])], attrs: { axes: a.ints([-1, 0]), keepdims: a.int(0) } },
    { label: 'all axes', opset: 13, opType: 'ReduceMean', inputs: [x([2, 3])], attrs: { keepdims: a.int(0) } },
    { label: 'opset 18 axes input', opset: 18, opType: 'ReduceMean', inputs: [x([2, 3, 4]), c.i64([1])] },
    { label: 'opset 18 noop_with_empty_axes', opset: 18, opType: 'ReduceMean', inputs: [x([2, 3])], attrs: { noop_with_empty_axes: a.int(1) } },
  ],
  Slice: [
    { label: 'axis 1 [1:3]', opType: 'Slice', inputs: [x([2, 5]), c.i64([1]), c.i64([3]), c.i64([1])] },
    { label: 'step 2, axes omitted', opType: 'Slice', inputs: [x([7, 4]), c.i64([0, 1]), c.i64([7, 4]), null, c.i64([2, 2])] },
    { label: 'negative step', opType: 'Slice', inputs: [x([6]), c.i64([-1]), c.i64([-7]), c.i64([0]), c.i64([-2])] },
    { label: 'end INT64_MAX, negative start', opType: 'Slice', inputs: [x([3, 8]), c.i64([-3]), c.i64([INT64_MAX]), c.i64([-1])] },
    { label: 'clamped out-of-range start', opType: 'Slice', inputs: [x([3, 4]), c.i64([10]), c.i64([20]), c.i64([0])] },
    { label: 'opset 9 attributes', opset: 9, opType: 'Slice', inputs: [x([4, 5])], attrs: { starts: a.ints([1, 0]), ends: a.ints([3, 10]) } },
  ],
  Pad: [
    { label: 'constant pads input', opType: 'Pad', inputs: [x([1, 2, 3, 3]), c.i64([0, 0, 1, 2, 0, 0, 2, 1])] },
    { label: 'reflect with value', opType: 'Pad', inputs: [x([2, 4]), c.i64([0, 1, 0, 2]), c.f32([0], [])], attrs: { mode: a.string('reflect') } },
    { label: 'negative pads crop', opType: 'Pad', inputs: [x([5, 5]), c.i64([-1, 0, -2, 1])] },
    { label: 'opset 18 axes', opset: 18, opType: 'Pad', inputs: [x([2, 3, 4]), c.i64([1, 2]), null, c.i64([-1])] },
    { label: 'opset 10 attributes', opset: 10, opType: 'Pad', inputs: [x([2, 3])], attrs: { pads: a.ints([1, 0, 1, 0]), mode: a.string('edge') } },
  ],
  ConstantOfShape: [
    { label: 'default float zeros', opType: 'ConstantOfShape', inputs: [c.i64([2, 3])] },
    { label: 'int64 value', opType: 'ConstantOfShape', inputs: [c.i64([4])], attrs: { value: a.tensor(int64([1], [7])) } },
  ],
};

describe('shape inference matches ONNX Runtime', () => {
  for (const [group, list] of Object.entries(cases)) {
    describe(group, () => {
      it.each(list)('$label', async (spec) => {
        const { inferred, actual } = await runSingleNode(spec);
        expect(inferred).toEqual(actual);
      });
    });
  }
});
