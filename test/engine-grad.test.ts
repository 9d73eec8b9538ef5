import './helpers/engine-env.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import { emptyGraph, type Attribute, type Graph } from '../src/onnx/graph.js';
import { float32, int64, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { Random } from '../src/util/random.js';

/**
 * Every lowered op, forward and backward, against PyTorch (Debian's python3-torch, through
 * test/helpers/torch-engine-grad.py, which re-implements each op from the ONNX spec with plain torch
 * functions). Each case runs one probe: output, d(sum(out·R))/dx, every parameter's gradient and, in
 * training mode, the BN running statistics after the step.
 */

type AttrValue = number | number[] | string;
interface CaseNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attribute>;
}
interface Case {
  name: string;
  input: number[];
  nodes: CaseNode[];
  tensors?: Record<string, Tensor>;
  output?: string;
  training?: boolean;
  opset?: number;
}

const i = (value: number): Attribute => ({ type: 'int', value });
const f = (value: number): Attribute => ({ type: 'float', value });
const is = (value: number[]): Attribute => ({ type: 'ints', value });
const s = (value: string): Attribute => ({ type: 'string', value });

const rng = new Random(1234);
const randn = (dims: number[], scale = 1): Tensor<'float32'> =>
  float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale));
const positive = (dims: number[]): Tensor<'float32'> =>
  float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => 0.5 + rng.next()));

function conv(name: string, attrs: Record<string, Attribute>, w: number[], bias = false): Case {
  return {
    name,
    input: [2, w[1]! * (attrs['group']?.value as number ?? 1), 7, 6],
    nodes: [{ op: 'Conv', inputs: ['x', 'w', ...(bias ? ['b'] : [])], outputs: ['y'], attrs }],
    tensors: { w: randn(w, 0.3), ...(bias ? { b: randn([w[0]!]) } : {}) },
  };
}

function bn(training: boolean): Case {
  return {
    name: `BatchNormalization (${training ? 'train: batch statistics, running update' : 'eval'})`,
    input: [4, 3, 5, 5],
    training,
    nodes: [{ op: 'BatchNormalization', inputs: ['x', 'g', 'b', 'm', 'v'], outputs: ['y'], attrs: { epsilon: f(1e-5), momentum: f(0.8) } }],
    tensors: { g: positive([3]), b: randn([3]), m: randn([3], 0.1), v: positive([3]) },
  };
}

const unary = (op: string, attrs: Record<string, Attribute> = {}): Case => ({
  name: `${op} ${JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value])))}`,
  input: [2, 3, 4, 4],
  nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }],
});

const binary = (op: string): Case => ({
  name: `${op} with broadcasting, and x ${op} sigmoid(x)`,
  input: [2, 3, 4, 4],
  nodes: [
    { op, inputs: ['x', 'c'], outputs: ['t'] },
    { op: 'Sigmoid', inputs: ['x'], outputs: ['sx'] },
    { op, inputs: ['t', 'sx'], outputs: ['y'] },
  ],
  tensors: { c: positive([3, 1, 1]) },
});

const CASES: Case[] = [
  conv('Conv 3×3, pads 1', { kernel_shape: is([3, 3]), pads: is([1, 1, 1, 1]) }, [4, 3, 3, 3]),
  conv('Conv groups 2, dilation 2, stride 2, asymmetric pads, bias', { group: i(2), dilations: is([2, 2]), strides: is([2, 2]), pads: is([0, 1, 2, 1]) }, [4, 2, 3, 3], true),
  conv('Conv depthwise (group = channels), stride 2, bias', { group: i(4), strides: is([2, 2]), pads: is([1, 1, 1, 1]) }, [4, 1, 3, 3], true),
  conv('Conv auto_pad SAME_UPPER, stride 2', { auto_pad: s('SAME_UPPER'), strides: is([2, 2]) }, [3, 2, 3, 3]),
  bn(true),
  bn(false),
  unary('Relu'),
  unary('Sigmoid'),
  unary('HardSwish'),
  unary('HardSigmoid', { alpha: f(0.2), beta: f(0.5) }),
  unary('HardSigmoid', { alpha: f(1 / 6), beta: f(0.5) }),
  unary('LeakyRelu', { alpha: f(0.1) }),
  {
    name: 'Clip(0, 6) (ReLU6)',
    input: [2, 3, 4, 4],
    nodes: [
      { op: 'Mul', inputs: ['x', 'four'], outputs: ['x4'] },
      { op: 'Clip', inputs: ['x4', 'lo', 'hi'], outputs: ['y'] },
    ],
    tensors: { four: float32([], [4]), lo: float32([], [0]), hi: float32([], [6]) },
  },
  binary('Add'),
  binary('Sub'),
  binary('Mul'),
  binary('Div'),
  unary('MaxPool', { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([1, 1, 1, 1]) }),
  unary('MaxPool', { kernel_shape: is([2, 2]), strides: is([2, 2]), ceil_mode: i(1) }),
  unary('MaxPool', { kernel_shape: is([2, 2]), pads: is([0, 0, 1, 1]), dilations: is([1, 2]) }),
  unary('AveragePool', { kernel_shape: is([2, 2]), strides: is([2, 2]) }),
  unary('AveragePool', { kernel_shape: is([3, 3]), pads: is([1, 1, 1, 1]), count_include_pad: i(0) }),
  unary('AveragePool', { kernel_shape: is([3, 3]), pads: is([1, 1, 1, 1]), count_include_pad: i(1) }),
  unary('AveragePool', { kernel_shape: is([2, 2]), pads: is([0, 0, 1, 1]), count_include_pad: i(0) }),
  // Pads over half the kernel or asymmetric are applied explicitly; with ceil_mode a window may then not
  // start in the end padding (ONNX's guard), which ATen would keep for explicit padding.
  unary('MaxPool', { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([2, 2, 2, 2]), ceil_mode: i(1) }),
  unary('AveragePool', { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([2, 2, 2, 2]), ceil_mode: i(1), count_include_pad: i(0) }),
  unary('AveragePool', { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([2, 2, 2, 2]), ceil_mode: i(1), count_include_pad: i(1) }),
  unary('AveragePool', { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([0, 0, 2, 2]), ceil_mode: i(1), count_include_pad: i(0) }),
  unary('GlobalAveragePool'),
  unary('GlobalMaxPool'),
  {
    name: 'Flatten → Gemm (transB, bias) → Reshape → Transpose',
    input: [2, 3, 2, 2],
    nodes: [
      { op: 'Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: i(1) } },
      { op: 'Gemm', inputs: ['f', 'w', 'b'], outputs: ['g'], attrs: { transB: i(1) } },
      { op: 'Reshape', inputs: ['g', 'shape'], outputs: ['r'] },
      { op: 'Transpose', inputs: ['r'], outputs: ['y'], attrs: { perm: is([2, 0, 1]) } },
    ],
    tensors: { w: randn([6, 12], 0.3), b: randn([6]), shape: int64([3], [0, 3, -1]) },
  },
  {
    name: 'Gemm alpha/beta, transA; MatMul weight',
    input: [5, 2],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['g'], attrs: { transA: i(1), alpha: f(0.5), beta: f(2) } },
      { op: 'MatMul', inputs: ['g', 'm'], outputs: ['y'] },
    ],
    tensors: { w: randn([5, 4]), c: randn([4]), m: randn([4, 3]) },
  },
  {
    name: 'Squeeze / Unsqueeze, Concat, Split, Identity',
    input: [2, 4, 1, 3],
    nodes: [
      { op: 'Squeeze', inputs: ['x', 'axes'], outputs: ['sq'] },
      { op: 'Split', inputs: ['sq', 'sizes'], outputs: ['a', 'b'], attrs: { axis: i(1) } },
      { op: 'Relu', inputs: ['a'], outputs: ['ra'] },
      { op: 'Concat', inputs: ['b', 'ra', 'sq'], outputs: ['c'], attrs: { axis: i(1) } },
      { op: 'Identity', inputs: ['c'], outputs: ['ci'] },
      { op: 'Unsqueeze', inputs: ['ci', 'axes'], outputs: ['y'] },
    ],
    tensors: { axes: int64([1], [2]), sizes: int64([2], [1, 3]) },
  },
  {
    name: 'Pad constant (value 0.5, asymmetric), reflect and edge',
    input: [2, 3, 4, 5],
    nodes: [
      { op: 'Pad', inputs: ['x', 'p1', 'v'], outputs: ['a'] },
      { op: 'Pad', inputs: ['a', 'p2'], outputs: ['b'], attrs: { mode: s('reflect') } },
      { op: 'Pad', inputs: ['b', 'p3'], outputs: ['y'], attrs: { mode: s('edge') } },
    ],
    tensors: {
      p1: int64([8], [0, 0, 1, 0, 0, 0, 0, 2]),
      v: float32([], [0.5]),
      p2: int64([8], [0, 0, 1, 1, 0, 0, 2, 1]),
      p3: int64([8], [0, 0, 0, 2, 0, 0, 1, 0]),
    },
  },
  {
    // F.interpolate as torch.onnx writes it; the reference is PyTorch's own F.interpolate and its gradient.
    name: 'Resize nearest ×2 (asymmetric, floor), bilinear ×0.5 (half_pixel), bicubic to a size (align_corners)',
    input: [2, 3, 5, 6],
    nodes: [
      { op: 'Resize', inputs: ['x', '', 'up'], outputs: ['a'], attrs: { mode: s('nearest'), coordinate_transformation_mode: s('asymmetric'), nearest_mode: s('floor') } },
      { op: 'Resize', inputs: ['a', '', 'down'], outputs: ['b'], attrs: { mode: s('linear'), coordinate_transformation_mode: s('half_pixel') } },
      { op: 'Resize', inputs: ['b', '', '', 'sizes'], outputs: ['y'], attrs: { mode: s('cubic'), coordinate_transformation_mode: s('align_corners'), cubic_coeff_a: f(-0.75) } },
    ],
    tensors: { up: float32([4], [1, 1, 2, 2]), down: float32([4], [1, 1, 0.5, 0.5]), sizes: int64([4], [2, 3, 7, 4]) },
  },
  {
    name: 'Resize bilinear to a size (pytorch_half_pixel, upsampling H, downsampling W), bicubic ×2 (half_pixel)',
    input: [2, 3, 5, 6],
    nodes: [
      { op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['a'], attrs: { mode: s('linear'), coordinate_transformation_mode: s('pytorch_half_pixel') } },
      { op: 'Resize', inputs: ['a', '', 'up'], outputs: ['y'], attrs: { mode: s('cubic'), coordinate_transformation_mode: s('half_pixel'), cubic_coeff_a: f(-0.75) } },
    ],
    tensors: { up: float32([4], [1, 1, 2, 2]), sizes: int64([4], [2, 3, 9, 4]) },
  },
  {
    name: 'ReduceMean (spatial, keepdims 0; all axes) and Slice (channel halves, negative step, to INT64_MAX)',
    input: [2, 6, 5, 4],
    nodes: [
      { op: 'Slice', inputs: ['x', 's1', 'e1', 'a1', 'st1'], outputs: ['lo'] },
      { op: 'Slice', inputs: ['x', 's2', 'e2', 'a2', 'st2'], outputs: ['hi'] },
      { op: 'Add', inputs: ['lo', 'hi'], outputs: ['sum'] },
      { op: 'Slice', inputs: ['sum', 's3', 'e3', 'a3', 'st3'], outputs: ['rev'] },
      { op: 'ReduceMean', inputs: ['rev'], outputs: ['m'], attrs: { axes: is([2, -1]), keepdims: i(0) } },
      { op: 'ReduceMean', inputs: ['rev'], outputs: ['all'] },
      { op: 'Add', inputs: ['m', 'all'], outputs: ['y'] },
    ],
    opset: 17,
    tensors: {
      s1: int64([1], [0]), e1: int64([1], [3]), a1: int64([1], [1]), st1: int64([1], [1]),
      s2: int64([1], [3]), e2: int64([1], [2 ** 63 - 1]), a2: int64([1], [1]), st2: int64([1], [1]),
      s3: int64([2], [-1, 0]), e3: int64([2], [-(2 ** 63), 4]), a3: int64([2], [2, 3]), st3: int64([2], [-2, 3]),
    },
  },
  unary('Erf'),
  {
    name: 'Max, Min, Sum, Mean with broadcasting; Expand both ways (F.normalize: ReduceL2 → Clip → Expand → Div)',
    input: [2, 3, 4, 4],
    nodes: [
      { op: 'Max', inputs: ['x', 'c'], outputs: ['a'] },
      { op: 'Min', inputs: ['x', 'a', 'r'], outputs: ['b'] },
      { op: 'Sum', inputs: ['a', 'b', 'x'], outputs: ['s'] },
      { op: 'Mean', inputs: ['s', 'c'], outputs: ['m'] },
      { op: 'ReduceL2', inputs: ['m'], outputs: ['n'], attrs: { axes: is([1]) } },
      { op: 'Clip', inputs: ['n', 'eps'], outputs: ['nc'] },
      { op: 'Expand', inputs: ['nc', 'full'], outputs: ['ne'] },
      { op: 'Div', inputs: ['m', 'ne'], outputs: ['y'] },
    ],
    tensors: { c: randn([3, 1, 1]), r: randn([4]), eps: float32([], [1e-3]), full: int64([4], [2, 3, 1, 4]) },
  },
  {
    name: 'ReduceSum (axes input), ReduceMax over channels (CBAM), ReduceL2, ReduceLogSumExp, ReduceProd',
    input: [2, 3, 4, 5],
    nodes: [
      { op: 'ReduceSum', inputs: ['x', 'hw'], outputs: ['s'] },
      { op: 'ReduceMax', inputs: ['x'], outputs: ['m'], attrs: { axes: is([1]) } },
      { op: 'ReduceL2', inputs: ['x'], outputs: ['l'], attrs: { axes: is([1]) } },
      { op: 'ReduceLogSumExp', inputs: ['x'], outputs: ['e'], attrs: { axes: is([1]) } },
      { op: 'ReduceProd', inputs: ['x'], outputs: ['p'], attrs: { axes: is([1, -1]), keepdims: i(0) } },
      { op: 'Add', inputs: ['m', 'l'], outputs: ['ml'] },
      { op: 'Add', inputs: ['ml', 'e'], outputs: ['mle'] },
      { op: 'Mul', inputs: ['mle', 's'], outputs: ['t'] },
      { op: 'Unsqueeze', inputs: ['p', 'one'], outputs: ['pu'] },
      { op: 'Unsqueeze', inputs: ['pu', 'three'], outputs: ['pp'] },
      { op: 'Add', inputs: ['t', 'pp'], outputs: ['y'] },
    ],
    tensors: { hw: int64([2], [2, 3]), one: int64([1], [1]), three: int64([1], [3]) },
  },
  ...['Tanh', 'Softplus', 'Exp', 'Neg', 'Abs', 'Softsign'].map((op) => unary(op)),
  unary('Elu', { alpha: f(0.7) }),
  unary('Selu'),
  unary('Celu', { alpha: f(1.5) }),
  {
    name: 'Log, Sqrt and Reciprocal of a positive value; Pow with a scalar and an integer exponent',
    input: [2, 3, 4, 4],
    nodes: [
      { op: 'Mul', inputs: ['x', 'x'], outputs: ['sq'] },
      { op: 'Add', inputs: ['sq', 'one'], outputs: ['p'] },
      { op: 'Log', inputs: ['p'], outputs: ['l'] },
      { op: 'Sqrt', inputs: ['p'], outputs: ['r'] },
      { op: 'Reciprocal', inputs: ['r'], outputs: ['rr'] },
      { op: 'Pow', inputs: ['p', 'half'], outputs: ['h'] },
      { op: 'Pow', inputs: ['x', 'three'], outputs: ['c'] },
      { op: 'Add', inputs: ['l', 'rr'], outputs: ['t1'] },
      { op: 'Add', inputs: ['h', 'c'], outputs: ['t2'] },
      { op: 'Add', inputs: ['t1', 't2'], outputs: ['y'] },
    ],
    tensors: { one: float32([], [1]), half: float32([], [0.5]), three: int64([], [3]) },
  },
  {
    name: 'PRelu with a per-channel slope [C, 1, 1] (nn.PReLU as torch exports it; the slope trains)',
    input: [2, 3, 4, 4],
    nodes: [{ op: 'PRelu', inputs: ['x', 'slope'], outputs: ['y'] }],
    tensors: { slope: float32([3, 1, 1], [0.25, -0.1, 0.6]) },
  },
  { ...unary('LogSoftmax', { axis: i(1) }), name: 'LogSoftmax over the channels' },
  {
    name: 'LayerNormalization channels-last (Transpose → LN over C → Transpose, as ConvNeXt), then over H·W·C',
    input: [2, 5, 3, 4],
    nodes: [
      { op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: is([0, 2, 3, 1]) } },
      { op: 'LayerNormalization', inputs: ['t', 'g', 'b'], outputs: ['n'], attrs: { epsilon: f(1e-6) } },
      { op: 'Transpose', inputs: ['n'], outputs: ['u'], attrs: { perm: is([0, 3, 1, 2]) } },
      { op: 'LayerNormalization', inputs: ['u', 'g2'], outputs: ['y'], attrs: { axis: i(-3) } },
    ],
    tensors: { g: positive([5]), b: randn([5]), g2: positive([4]) },
  },
  {
    name: 'GroupNorm as torch exports it: Reshape → InstanceNormalization → Reshape → Mul → Add',
    input: [2, 6, 3, 3],
    nodes: [
      { op: 'Reshape', inputs: ['x', 'grouped'], outputs: ['g'] },
      { op: 'InstanceNormalization', inputs: ['g', 'ones', 'zeros'], outputs: ['n'], attrs: { epsilon: f(1e-5) } },
      { op: 'Reshape', inputs: ['n', 'back'], outputs: ['r'] },
      { op: 'Mul', inputs: ['r', 'gamma'], outputs: ['m'] },
      { op: 'Add', inputs: ['m', 'beta'], outputs: ['y'] },
    ],
    tensors: {
      grouped: int64([3], [2, 3, -1]), back: int64([4], [2, 6, 3, 3]),
      ones: float32([3], [1, 1.5, 0.5]), zeros: float32([3], [0, 0.1, -0.2]),
      gamma: randn([6, 1, 1]), beta: randn([6, 1, 1]),
    },
  },
  {
    name: 'LayerNormalization with Mean and InvStdDev outputs read downstream',
    input: [3, 4, 6],
    nodes: [
      { op: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['n', 'mean', 'inv'], attrs: { axis: i(1) } },
      { op: 'Mul', inputs: ['n', 'inv'], outputs: ['ni'] },
      { op: 'Add', inputs: ['ni', 'mean'], outputs: ['y'] },
    ],
    tensors: { g: positive([4, 6]), b: randn([6]) },
  },
  {
    name: 'LayerNormalization with Scale and B of leading size-1 axes ([1, 1, C]: they broadcast to X)',
    input: [3, 4, 6],
    nodes: [{ op: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['y'] }],
    tensors: { g: positive([1, 1, 6]), b: randn([1, 1, 6]) },
  },
  { ...unary('Softmax', { axis: i(1) }), name: 'Softmax legacy (opset 11: flatten at axis)', opset: 11 },
  { ...unary('Dropout', { ratio: f(0.3) }), opset: 11 },
  {
    name: 'QuantizeLinear → DequantizeLinear per tensor (fake quant, uint8)',
    input: [2, 3, 4, 4],
    nodes: [
      { op: 'QuantizeLinear', inputs: ['x', 'scale', 'zp'], outputs: ['q'] },
      { op: 'DequantizeLinear', inputs: ['q', 'scale', 'zp'], outputs: ['y'] },
    ],
    tensors: { scale: float32([], [0.02]), zp: makeTensor('uint8', [], Uint8Array.of(100)) },
  },
  {
    name: 'QuantizeLinear → DequantizeLinear per channel on a conv weight (int8)',
    input: [2, 3, 5, 5],
    nodes: [
      { op: 'QuantizeLinear', inputs: ['w', 'scale', 'zp'], outputs: ['wq'], attrs: { axis: i(0) } },
      { op: 'DequantizeLinear', inputs: ['wq', 'scale', 'zp'], outputs: ['wd'], attrs: { axis: i(0) } },
      { op: 'Conv', inputs: ['x', 'wd'], outputs: ['y'], attrs: { pads: is([1, 1, 1, 1]) } },
    ],
    tensors: { w: randn([4, 3, 3, 3], 0.3), scale: float32([4], [0.004, 0.006, 0.005, 0.01]), zp: makeTensor('int8', [4], Int8Array.of(0, 3, -2, 0)) },
  },
  {
    name: 'DequantizeLinear of stored int8 weights',
    input: [2, 3, 5, 5],
    nodes: [
      { op: 'DequantizeLinear', inputs: ['wq', 'scale', 'zp'], outputs: ['wd'], attrs: { axis: i(0) } },
      { op: 'Conv', inputs: ['x', 'wd'], outputs: ['y'] },
    ],
    tensors: {
      wq: makeTensor('int8', [2, 3, 3, 3], Int8Array.from({ length: 54 }, () => rng.int(255) - 127)),
      scale: float32([2], [0.01, 0.02]),
      zp: makeTensor('int8', [2], Int8Array.of(1, -1)),
    },
  },
];

function bytesOf(t: Tensor): Uint8Array {
  const view = t.data as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function graphOf(c: Case): Graph {
  const g = emptyGraph(c.name, c.opset ?? 17);
  g.inputs = [{ name: 'x', dtype: 'float32', shape: c.input }];
  g.nodes = c.nodes.map((n, k) => ({ name: `n${k}_${n.op}`, opType: n.op, domain: '', inputs: n.inputs, outputs: n.outputs, attributes: n.attrs ?? {} }));
  g.outputs = [{ name: c.output ?? 'y', dtype: 'float32' }];
  g.initializers = new Map(Object.entries(c.tensors ?? {}));
  return g;
}

const plainAttrs = (attrs: Record<string, Attribute> = {}): Record<string, AttrValue> =>
  Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value as AttrValue]));

interface Ours {
  output: Float32Array;
  inputGrad: Float32Array;
  grads: Map<string, Float32Array | undefined>;
  state: Map<string, Float32Array>;
  params: string[];
}

interface Reference {
  output: number[];
  input_grad: number[] | null;
  grads: Record<string, number[] | null>;
  state: Record<string, number[]>;
}

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-4): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let k = 0; k < expected.length; k++) {
    const err = Math.abs(actual[k]! - expected[k]!) / (1 + Math.abs(expected[k]!));
    if (!(err <= worst)) {
      worst = err;
      at = k;
    }
  }
  expect(worst, `${what}: worst relative error at ${at}: ours ${actual[at]} vs torch ${expected[at]}`).toBeLessThanOrEqual(tolerance);
}

const available = nativeAvailable();

describe.skipIf(!available)('engine gradients vs PyTorch', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slim-grad-'));
  const ours = new Map<string, Ours>();
  const refs = new Map<string, Reference>();

  beforeAll(() => {
    const folders: string[] = [];
    CASES.forEach((c, k) => {
      const graph = graphOf(c);
      const plan = EnginePlan.create(graph, { threads: 1 });
      const x = randn(c.input);
      const outDims = plan.forward(x)[0]!.dims;
      const r = randn([...outDims]);
      const training = c.training ?? false;
      const probe = plan.probe(x, r.data, training);
      ours.set(c.name, {
        output: probe.output.data,
        inputGrad: probe.inputGrad,
        grads: new Map(plan.paramNames.map((n) => [n, plan.grad(n)])),
        state: new Map(plan.stateNames.map((n) => [n, plan.read(n)])),
        params: plan.paramNames,
      });
      const folder = path.join(dir, String(k));
      mkdirSync(folder);
      const tensors = [...graph.initializers];
      tensors.forEach(([, t], j) => writeFileSync(path.join(folder, `${j}.bin`), bytesOf(t)));
      writeFileSync(path.join(folder, 'x.bin'), Buffer.from(x.data.buffer));
      writeFileSync(path.join(folder, 'r.bin'), Buffer.from(r.data.buffer));
      writeFileSync(path.join(folder, 'case.json'), JSON.stringify({
        nodes: c.nodes.map((n) => ({ op: n.op, inputs: n.inputs, outputs: n.outputs, attrs: plainAttrs(n.attrs) })),
        opset: c.opset ?? 17,
        training,
        input: { name: 'x', dims: c.input },
        output: c.output ?? 'y',
        params: plan.paramNames,
        state: plan.stateNames,
        tensors: Object.fromEntries(tensors.map(([name, t]) => [name, { dims: t.dims, dtype: t.dtype }])),
      }));
      folders.push(folder);
    });
    execFileSync('/usr/bin/python3', [path.join(import.meta.dirname, 'helpers', 'torch-engine-grad.py'), ...folders], { stdio: ['ignore', 'inherit', 'inherit'] });
    CASES.forEach((c, k) => refs.set(c.name, JSON.parse(readFileSync(path.join(dir, String(k), 'result.json'), 'utf8')) as Reference));
  }, 300_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of CASES) {
    it(c.name, () => {
      const o = ours.get(c.name)!;
      const ref = refs.get(c.name)!;
      expectClose('output', o.output, ref.output);
      expectClose('input gradient', o.inputGrad, ref.input_grad ?? []);
      for (const name of o.params) {
        const g = o.grads.get(name);
        const expected = ref.grads[name];
        expect(g !== undefined, `gradient of '${name}' exists in both`).toBe(expected !== null);
        if (g && expected) expectClose(`gradient of '${name}'`, g, expected);
      }
      for (const [name, value] of o.state) expectClose(`state '${name}' after the step`, value, ref.state[name]!);
    });
  }

  it('trains the weights a layer owns and only those', () => {
    expect(ours.get(CASES[1]!.name)!.params).toEqual(['w', 'b']);
    expect(ours.get(bn(true).name)!.params).toEqual(['g', 'b']);
    expect(ours.get(bn(true).name)!.state.size).toBe(2);
    // Constants feeding elementwise ops, shapes and quantization parameters stay fixed.
    expect(ours.get(binary('Mul').name)!.params).toEqual([]);
    expect(ours.get(CASES.find((c) => c.name.startsWith('Flatten'))!.name)!.params).toEqual(['w', 'b']);
    expect(ours.get(CASES.find((c) => c.name.startsWith('PRelu'))!.name)!.params).toEqual(['slope']);
    expect(ours.get(CASES.find((c) => c.name.startsWith('LayerNormalization channels'))!.name)!.params).toEqual(['g', 'b', 'g2']);
    expect(ours.get(CASES.find((c) => c.name.startsWith('Log, Sqrt'))!.name)!.params).toEqual([]);
    // GroupNorm's affine after the InstanceNormalization trains (its gradients checked above); the
    // input-side Mul of the binary cases is preprocessing and does not.
    expect(ours.get(CASES.find((c) => c.name.startsWith('GroupNorm'))!.name)!.params).toEqual(['ones', 'zeros', 'gamma', 'beta']);
  });
});

describe.skipIf(!available)('engine dropout', () => {
  it('is the identity in eval mode and scales kept units by 1/(1-p) in training', () => {
    const g = graphOf({
      name: 'dropout',
      input: [4, 8, 4, 4],
      nodes: [{ op: 'Dropout', inputs: ['x', 'ratio'], outputs: ['y'] }],
      tensors: { ratio: float32([], [0.25]) },
    });
    const plan = EnginePlan.create(g, { threads: 1 });
    const x = positive([4, 8, 4, 4]);
    expect(Array.from(plan.forward(x)[0]!.data)).toEqual(Array.from(x.data));
    const r = randn([4, 8, 4, 4]);
    const { output, inputGrad } = plan.probe(x, r.data, true);
    let dropped = 0;
    for (let k = 0; k < x.data.length; k++) {
      const kept = output.data[k] !== 0;
      if (!kept) dropped++;
      // Kept: y = x / 0.75 and dy/dx = 1/0.75; dropped: both 0.
      expect(output.data[k]).toBeCloseTo(kept ? x.data[k]! / 0.75 : 0, 5);
      expect(inputGrad[k]).toBeCloseTo(kept ? r.data[k]! / 0.75 : 0, 5);
    }
    expect(dropped / x.data.length).toBeGreaterThan(0.15);
    expect(dropped / x.data.length).toBeLessThan(0.35);
  });
});
