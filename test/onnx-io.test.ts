/**
 * ONNX IO: round trips on PyTorch-exported fixtures, every attribute kind and dtype (checked by running
 * the encoded bytes in ONNX Runtime), external data, hostile files, atomic writes, and validation.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { runSlim } from './helpers/cli.js';
import { emptyGraph, type Attribute, type Graph, type Node, type ValueInfo } from '../src/onnx/graph.js';
import { decodeModel, decodeTensor, encodeModel, encodeTensor, fileError, HOST_TAG, readModel, writeModel } from '../src/onnx/io.js';
import { ModelProto, TensorProto, toInt64, type IAttributeProto, type IModelProto, type ITensorProto, type ITypeProto } from '../src/onnx/proto.js';
import { makeTensor, numberToFloat16Bits, type Tensor } from '../src/onnx/tensor.js';
import { loadModel, loadModelForRuntime, trainingModeProblem, TRAINING_MODE_FIX, validateGraph } from '../src/onnx/validate.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const FIXTURE_NAMES = ['torch-tiny-resnet', 'torch-tiny-mobilenet', 'torch-tiny-resnet-folded'];
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const tmpRoot = mkdtempSync(join(tmpdir(), 'slim-onnx-io-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let tmpCount = 0;
const freshDir = (): string => {
  const d = join(tmpRoot, `t${tmpCount++}`);
  mkdirSync(d);
  return d;
};

interface Sidecar {
  input_dims: number[];
  input: number[];
  output_dims: number[];
  output: number[];
}

async function run(model: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model as Uint8Array, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(tol);
}

function thrown(f: () => unknown): SlimError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SlimError);
    expect((e as Error).message).not.toContain('\n');
    return e as SlimError;
  }
  throw new Error('expected a SlimError, nothing was thrown');
}

async function rejected(p: Promise<unknown>): Promise<SlimError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SlimError);
    return e as SlimError;
  }
  throw new Error('expected a SlimError, the promise resolved');
}

function node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}, domain = ''): Node {
  return { name: outputs[0] ?? opType, opType, domain, inputs, outputs, attributes };
}

function graphOf(parts: Partial<Graph>): Graph {
  return { ...emptyGraph('test', 17), ...parts };
}

/** A model proto with one float input 'x' [1] and output 'y', plus whatever `extra` sets. */
function rawModel(extra: (m: IModelProto) => void): Uint8Array {
  const tensorType = (): ITypeProto => ({ tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }] } } });
  const m: IModelProto = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: [{ op_type: 'Relu', input: ['x'], output: ['y'] }],
      input: [{ name: 'x', type: tensorType() }],
      output: [{ name: 'y', type: tensorType() }],
    },
  };
  extra(m);
  return ModelProto.encode(m);
}

describe('PyTorch fixtures', () => {
  for (const name of FIXTURE_NAMES) {
    it(`${name}: decode → encode → decode is identical, and ONNX Runtime gives PyTorch's output`, async () => {
      const file = join(FIXTURES, `${name}.onnx`);
      const bytes = readFileSync(file);
      const graph = decodeModel(bytes, { file, baseDir: FIXTURES });
      const encoded = encodeModel(graph).model;
      expect(decodeModel(encoded, { file: 'encoded' })).toEqual(graph);
      expect(graph.opsets['']).toBeGreaterThanOrEqual(7);
      expect(graph.inputs[0]!.shape).toEqual(['batch', 3, 16, 16]);
      expect(graph.producerName).toBe('pytorch');

      const side = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Sidecar;
      const feeds = { [graph.inputs[0]!.name]: new ort.Tensor('float32', Float32Array.from(side.input), side.input_dims) };
      const outName = graph.outputs[0]!.name;
      const before = (await run(bytes, feeds))[outName]!;
      const after = (await run(encoded, feeds))[outName]!;
      expect(after.dims).toEqual(side.output_dims);
      expectClose(after.data as Float32Array, side.output);
      expect(Array.from(after.data as Float32Array)).toEqual(Array.from(before.data as Float32Array));
    });
  }
});

describe('model fields', () => {
  it('keep model_version, domain and both doc strings through decode → encode', () => {
    const g = emptyGraph('fields');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [2] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [2] }];
    g.nodes = [{ name: 'relu', opType: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attributes: {} }];
    const proto = ModelProto.decode(encodeModel(g).model) as IModelProto;
    proto.model_version = toInt64(7);
    proto.domain = 'com.acme.vision';
    proto.doc_string = 'the model';
    proto.graph!.doc_string = 'the graph';
    const again = ModelProto.decode(encodeModel(decodeModel(ModelProto.encode(proto))).model) as IModelProto;
    expect(Number(again.model_version)).toBe(7);
    expect(again.domain).toBe('com.acme.vision');
    expect(again.doc_string).toBe('the model');
    expect(again.graph!.doc_string).toBe('the graph');
  });
});

describe('attributes', () => {
  // Every attribute kind, each read by a real op, so ONNX Runtime is the judge of the encoding.
  function attributeModel(): Graph {
    const float = (value: number): Attribute => ({ type: 'float', value });
    return graphOf({
      opsets: { '': 17, 'ai.onnx.ml': 3 },
      inputs: [
        { name: 'x', dtype: 'float32', shape: [2, 3] },
        { name: 's', dtype: 'string', shape: [4] },
      ],
      outputs: [
        { name: 'soft', dtype: 'float32', shape: [3, 2] },
        { name: 'padded', dtype: 'float32', shape: [3, 4] },
        { name: 'ids', dtype: 'int64', shape: [4] },
      ],
      initializers: new Map([['pads', makeTensor('int64', [4], BigInt64Array.from([0n, 1n, 0n, 1n]))]]),
      nodes: [
        node('LeakyRelu', ['x'], ['a'], { alpha: float(0.1) }),
        node('Transpose', ['a'], ['b'], { perm: { type: 'ints', value: [1, 0] } }),
        node('Scaler', ['b'], ['c'], {
          offset: { type: 'floats', value: [1, -1] },
          scale: { type: 'floats', value: [2, 0.5] },
        }, 'ai.onnx.ml'),
        node('Constant', [], ['k'], { value: { type: 'tensor', value: makeTensor('float32', [3, 2], Float32Array.from([0, 1, 2, 3, 4, 5])) } }),
        node('Add', ['c', 'k'], ['d']),
        node('Softmax', ['d'], ['soft'], { axis: { type: 'int', value: 1 } }),
        node('Pad', ['soft', 'pads'], ['padded'], { mode: { type: 'string', value: 'reflect' } }),
        node('CategoryMapper', ['s'], ['ids'], {
          cats_strings: { type: 'strings', value: ['max', 'min', 'héllo', 'five'] },
          // 2^63 does not fit int64: the writer clamps it to INT64_MAX.
          cats_int64s: { type: 'ints', value: [2 ** 63, -(2 ** 63), 7, 5] },
          default_int64: { type: 'int', value: -1 },
        }, 'ai.onnx.ml'),
      ],
    });
  }

  it('round-trip every kind and run in ONNX Runtime with hand-computed results', async () => {
    const graph = attributeModel();
    const encoded = encodeModel(graph).model;
    const back = decodeModel(encoded);
    expect(back).toEqual({ ...graph, nodes: back.nodes });
    // Float attributes are float32 in the file.
    const floatsRounded = graph.nodes.map((n) => n.attributes);
    floatsRounded[0]!.alpha = { type: 'float', value: Math.fround(0.1) };
    expect(back.nodes.map((n) => n.attributes)).toEqual(floatsRounded);

    const x = [-1, 0, 2, 3, -4, 5];
    const out = await run(encoded, {
      x: new ort.Tensor('float32', Float32Array.from(x), [2, 3]),
      s: new ort.Tensor('string', ['min', 'héllo', 'nope', 'max'], [4]),
    });
    // By hand: leaky → transpose → scaler → +k → softmax(axis 1) → reflect pad.
    const a = x.map((v) => (v < 0 ? 0.1 * v : v));
    const b = [a[0]!, a[3]!, a[1]!, a[4]!, a[2]!, a[5]!];
    const c = b.map((v, i) => (v - [1, -1][i % 2]!) * [2, 0.5][i % 2]!);
    const d = c.map((v, i) => v + i);
    const soft: number[] = [];
    for (let r = 0; r < 3; r++) {
      const e0 = Math.exp(d[2 * r]!);
      const e1 = Math.exp(d[2 * r + 1]!);
      soft.push(e0 / (e0 + e1), e1 / (e0 + e1));
    }
    expectClose(out.soft!.data as Float32Array, soft, 1e-6);
    const padded = [0, 1, 2].flatMap((r) => [soft[2 * r + 1]!, soft[2 * r]!, soft[2 * r + 1]!, soft[2 * r]!]);
    expectClose(out.padded!.data as Float32Array, padded, 1e-6);
    expect(Array.from(out.ids!.data as BigInt64Array)).toEqual([INT64_MIN, 7n, -1n, INT64_MAX]);
  });

  it('write int64 extremes exactly, clamped into range', () => {
    const graph = attributeModel();
    const raw = ModelProto.decode(encodeModel(graph).model);
    const mapper = raw.graph!.node!.find((n) => n.op_type === 'CategoryMapper')!;
    const ints = mapper.attribute!.find((a) => a.name === 'cats_int64s')!.ints!;
    expect(ints.map((v) => (typeof v === 'number' ? BigInt(v) : (BigInt(v.high) << 32n) | BigInt(v.low >>> 0)))).toEqual([
      INT64_MAX, INT64_MIN, 7n, 5n,
    ]);
    expect(toInt64(Number.NaN)).toEqual({ low: 0, high: 0, unsigned: false });
    expect(toInt64(-Infinity)).toEqual({ low: 0, high: -2147483648, unsigned: false });
  });

  it('keep subgraph (GRAPH) attributes opaque and re-encode them so that If still runs', async () => {
    const constant = (name: string, value: number): IAttributeProto => ({
      name,
      type: 5, // GRAPH
      g: {
        name,
        node: [{
          op_type: 'Constant',
          output: [`${name}_out`],
          attribute: [{ name: 'value', type: 4, t: { dims: [1], data_type: 1, float_data: [value] } }],
        }],
        output: [{ name: `${name}_out`, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }] } } } }],
      },
    });
    const graph = graphOf({
      inputs: [{ name: 'cond', dtype: 'bool', shape: [] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
      nodes: [node('If', ['cond'], ['y'], {
        then_branch: { type: 'opaque', value: constant('then_branch', 3.5) },
        else_branch: { type: 'opaque', value: constant('else_branch', -2) },
      })],
    });
    const once = decodeModel(encodeModel(graph).model);
    expect(once.nodes[0]!.attributes.then_branch!.type).toBe('opaque');
    const twice = encodeModel(decodeModel(encodeModel(once).model)).model;
    expect(decodeModel(twice)).toEqual(once);
    const yes = await run(twice, { cond: new ort.Tensor('bool', [true], []) });
    const no = await run(twice, { cond: new ort.Tensor('bool', [false], []) });
    expect(Array.from(yes.y!.data as Float32Array)).toEqual([3.5]);
    expect(Array.from(no.y!.data as Float32Array)).toEqual([-2]);
  });

  it('read attributes of files that leave the type unset (IR < 3)', () => {
    const bytes = rawModel((m) => {
      m.graph!.node![0]!.attribute = [
        { name: 'f', f: 0.25 },
        { name: 'i', i: 42 },
        { name: 's', s: new TextEncoder().encode('same') },
        { name: 'is', ints: [1, 2] },
      ];
    });
    expect(decodeModel(bytes).nodes[0]!.attributes).toEqual({
      f: { type: 'float', value: 0.25 },
      i: { type: 'int', value: 42 },
      s: { type: 'string', value: 'same' },
      is: { type: 'ints', value: [1, 2] },
    });
  });
});

describe('tensors', () => {
  const tensors: Record<string, Tensor> = {
    float32: makeTensor('float32', [2, 3], Float32Array.from([0, -0, 1.5, -3.4e38, 1e-45, Math.PI])),
    float64: makeTensor('float64', [3], Float64Array.from([Math.E, -Infinity, 1e-310])),
    float16: makeTensor('float16', [5], Uint16Array.from([0x3c00, 0x7c00, 0x7e00, 0x0001, numberToFloat16Bits(-2.5)])),
    int8: makeTensor('int8', [3], Int8Array.from([-128, 0, 127])),
    uint8: makeTensor('uint8', [3], Uint8Array.from([0, 128, 255])),
    int16: makeTensor('int16', [2], Int16Array.from([-32768, 32767])),
    uint16: makeTensor('uint16', [2], Uint16Array.from([0, 65535])),
    int32: makeTensor('int32', [2], Int32Array.from([-(2 ** 31), 2 ** 31 - 1])),
    uint32: makeTensor('uint32', [2], Uint32Array.from([0, 2 ** 32 - 1])),
    int64: makeTensor('int64', [4], BigInt64Array.from([INT64_MIN, -1n, 0n, INT64_MAX])),
    uint64: makeTensor('uint64', [2], BigUint64Array.from([0n, 2n ** 64n - 1n])),
    bool: makeTensor('bool', [3], Uint8Array.from([1, 0, 1])),
    string: makeTensor('string', [2, 2], ['', 'héllo', '漢字', 'tab\there']),
    scalar: makeTensor('float32', [], Float32Array.from([7])),
    empty: makeTensor('int64', [0, 3], new BigInt64Array(0)),
  };

  it('round-trip every dtype through a model, and ONNX Runtime reads them back', async () => {
    // bfloat16 is left out here only because onnxruntime-node's JS tensors have no bfloat16 type.
    const graph = graphOf({
      initializers: new Map(Object.entries(tensors).map(([k, t]) => [`w_${k}`, t])),
      nodes: Object.keys(tensors).map((k) => node('Identity', [`w_${k}`], [`y_${k}`])),
      outputs: Object.entries(tensors).map(([k, t]): ValueInfo => ({ name: `y_${k}`, dtype: t.dtype, shape: [...t.dims] })),
    });
    const encoded = encodeModel(graph).model;
    expect(decodeModel(encoded)).toEqual(graph);
    const out = await run(encoded, {});
    for (const [k, t] of Object.entries(tensors)) {
      const y = out[`y_${k}`]!;
      expect(y.dims, k).toEqual(t.dims);
      const got = k === 'bool' ? Uint8Array.from(y.data as unknown as ArrayLike<number>, Number) : y.data;
      expect(Array.from(got as ArrayLike<unknown>), k).toEqual(Array.from(t.data as ArrayLike<unknown>));
    }
  });

  it('round-trip bfloat16 bit patterns', () => {
    const t = makeTensor('bfloat16', [4], Uint16Array.from([0x3f80, 0x7f80, 0xffc1, 0x0001]));
    expect(decodeTensor(encodeTensor(t))).toEqual(t);
  });

  it('read every typed field (the layout older exporters and ONNX test data use)', () => {
    const cases: { proto: ITensorProto; expected: Tensor }[] = [
      { proto: { dims: [2], data_type: 1, float_data: [1.5, -2] }, expected: makeTensor('float32', [2], Float32Array.from([1.5, -2])) },
      { proto: { dims: [2], data_type: 11, double_data: [0.1, -1e300] }, expected: makeTensor('float64', [2], Float64Array.from([0.1, -1e300])) },
      { proto: { dims: [2], data_type: 10, int32_data: [0x3c00, 0xfc00] }, expected: makeTensor('float16', [2], Uint16Array.from([0x3c00, 0xfc00])) },
      { proto: { dims: [2], data_type: 16, int32_data: [0x3f80, 0xc000] }, expected: makeTensor('bfloat16', [2], Uint16Array.from([0x3f80, 0xc000])) },
      { proto: { dims: [3], data_type: 3, int32_data: [-128, -1, 127] }, expected: makeTensor('int8', [3], Int8Array.from([-128, -1, 127])) },
      { proto: { dims: [2], data_type: 4, int32_data: [0, 65535] }, expected: makeTensor('uint16', [2], Uint16Array.from([0, 65535])) },
      { proto: { dims: [2], data_type: 9, int32_data: [1, 0] }, expected: makeTensor('bool', [2], Uint8Array.from([1, 0])) },
      { proto: { dims: [1], data_type: 6, int32_data: [-7] }, expected: makeTensor('int32', [1], Int32Array.from([-7])) },
      {
        proto: { dims: [3], data_type: 7, int64_data: [toInt64(INT64_MIN), toInt64(INT64_MAX), -5] },
        expected: makeTensor('int64', [3], BigInt64Array.from([INT64_MIN, INT64_MAX, -5n])),
      },
      {
        proto: { dims: [2], data_type: 13, uint64_data: [{ low: -1, high: -1, unsigned: true }, 3] },
        expected: makeTensor('uint64', [2], BigUint64Array.from([2n ** 64n - 1n, 3n])),
      },
      { proto: { dims: [1], data_type: 12, uint64_data: [4294967295] }, expected: makeTensor('uint32', [1], Uint32Array.from([4294967295])) },
      {
        proto: { dims: [2], data_type: 8, string_data: [new TextEncoder().encode('ä'), new Uint8Array()] },
        expected: makeTensor('string', [2], ['ä', '']),
      },
    ];
    for (const { proto, expected } of cases) {
      const t = decodeTensor(TensorProto.encode(proto));
      expect(t, expected.dtype).toEqual(expected);
      expect(decodeTensor(encodeTensor(t)), expected.dtype).toEqual(expected);
    }
  });

  it('copy raw_data into aligned arrays (a float tensor at an odd offset in the file)', () => {
    const raw = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    // A one-character name puts raw_data at an odd byte offset inside the encoded message.
    const bytes = TensorProto.encode({ dims: [3], data_type: 1, name: 'w', raw_data: raw });
    const t = decodeTensor(bytes);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3]);
  });

  it('refuse impossible sizes before allocating, and say which tensor', () => {
    const huge = thrown(() => decodeTensor(TensorProto.encode({ name: 'big', dims: [1 << 20, 1 << 20], data_type: 1 })));
    expect(huge.message).toMatch(/tensor 'big'.*more than 2\^31 elements/);
    expect(thrown(() => decodeTensor(TensorProto.encode({ dims: [-1], data_type: 1 }))).message).toMatch(/invalid dimension -1/);
    expect(thrown(() => decodeTensor(TensorProto.encode({ dims: [3], data_type: 1, raw_data: new Uint8Array(8) }))).message)
      .toMatch(/8 bytes of raw_data but dims \[3\] of float32 need 12/);
    expect(thrown(() => decodeTensor(TensorProto.encode({ dims: [3], data_type: 1, float_data: [1] }))).message)
      .toMatch(/1 values in float_data but its dims need 3/);
    expect(thrown(() => decodeTensor(TensorProto.encode({ dims: [1], data_type: 14, raw_data: new Uint8Array(8) }))).message)
      .toMatch(/data type COMPLEX64 \(14\), which slimkit does not support/);
  });
});

describe('model structure', () => {
  it('turn unknown dims into fresh symbols and write them back as unknown', () => {
    const bytes = rawModel((m) => {
      m.graph!.input![0]!.type!.tensor_type!.shape = { dim: [{}, { dim_param: 'batch' }, { dim_value: 3 }, {}] };
      m.graph!.output![0]!.type!.tensor_type!.shape = undefined;
      m.opset_import = [{ domain: 'ai.onnx', version: 13 }, { domain: 'com.example', version: 2 }];
      m.metadata_props = [{ key: 'author', value: 'me' }];
      m.doc_string = 'a doc';
    });
    const graph = decodeModel(bytes);
    expect(graph.inputs[0]!.shape).toEqual(['?1', 'batch', 3, '?2']);
    expect(graph.outputs[0]!.shape).toBeUndefined();
    expect(graph.opsets).toEqual({ '': 13, 'com.example': 2 });
    expect(graph.metadata).toEqual({ author: 'me' });
    expect(graph.docString).toBe('a doc');
    const raw = ModelProto.decode(encodeModel(graph).model);
    const dims = raw.graph!.input![0]!.type!.tensor_type!.shape!.dim!;
    expect(dims.map((d) => d.value)).toEqual([undefined, 'dim_param', 'dim_value', undefined]);
    expect(raw.opset_import!.map((o) => o.domain)).toEqual(['', 'com.example']);
    expect(decodeModel(encodeModel(graph).model)).toEqual(graph);
  });

  it('reject content the Graph cannot hold with a clear error', () => {
    const sparse = rawModel((m) => {
      m.graph!.sparse_initializer = [{ dims: [4], values: { name: 'sp', dims: [1], data_type: 1, float_data: [1] }, indices: { dims: [1], data_type: 7, int64_data: [2] } }];
    });
    expect(thrown(() => decodeModel(sparse, { file: 'm.onnx' })).message).toMatch(/^m\.onnx: sparse initializer 'sp': is a sparse tensor/);
    const sequence = rawModel((m) => {
      m.graph!.input![0]!.type = { sequence_type: { elem_type: { tensor_type: { elem_type: 1 } } } };
    });
    expect(thrown(() => decodeModel(sequence)).message).toMatch(/graph input 'x': is a sequence, not a tensor/);
    const complex = rawModel((m) => {
      m.graph!.initializer = [{ name: 'c', dims: [1], data_type: 15, raw_data: new Uint8Array(16) }];
    });
    expect(thrown(() => decodeModel(complex)).message).toMatch(/initializer 'c': has data type COMPLEX128/);
    expect(thrown(() => decodeModel(rawModel((m) => delete m.graph))).message).toMatch(/has no graph/);
    expect(thrown(() => decodeModel(rawModel((m) => (m.opset_import = [])))).message).toMatch(/imports no opset/);
    const twice = rawModel((m) => {
      m.graph!.node![0]!.attribute = [{ name: 'a', type: 2, i: 1 }, { name: 'a', type: 2, i: 2 }];
    });
    expect(thrown(() => decodeModel(twice)).message).toMatch(/has attribute 'a' twice/);
  });

  it('turn garbage into one-line SlimErrors naming the file', () => {
    const fixture = readFileSync(join(FIXTURES, 'torch-tiny-resnet.onnx'));
    expect(thrown(() => decodeModel(new Uint8Array(), { file: 'e.onnx' })).message).toMatch(/^e\.onnx: is empty/);
    // Text (a JSON config, a recipe, notes) is named as text, not as protobuf's "invalid wire type 4 at offset 3".
    expect(thrown(() => decodeModel(new TextEncoder().encode('{"not": "onnx"}'), { file: 'j.onnx' })).message)
      .toBe('j.onnx: is a text file, not an ONNX model — give the .onnx model itself (the binary file an ONNX exporter writes)');
    expect(thrown(() => decodeModel(new TextEncoder().encode('hello, wörld\nmy notes\n'), { file: 'hello.txt' })).message).toMatch(/^hello\.txt: is a text file/);
    expect(thrown(() => decodeModel(Uint8Array.from([0x0a, 0x05, 0x01, 0x02, 0xff, 0xfe]), { file: 'b.onnx' })).message).toMatch(/^b\.onnx: is not a valid ONNX model: /);
    expect(thrown(() => decodeModel(fixture.subarray(0, 5000), { file: 't.onnx' })).message)
      .toMatch(/^t\.onnx: is not a valid ONNX model: .*truncated/);
    // What users hand over instead of an ONNX file is named, with how to get one.
    const bytes = (text: string): Uint8Array => Buffer.from(text, 'latin1');
    const zip = (entry: string): Uint8Array => bytes(`PK\x03\x04\x00\x00\x08\x00\x00\x00${'\x00'.repeat(18)}archive/${entry}`);
    expect(thrown(() => decodeModel(zip('data.pkl'), { file: 'm.pt' })).message).toMatch(/^m\.pt: is a PyTorch checkpoint \(torch\.save\), not an ONNX model — export it to ONNX in PyTorch: torch\.onnx\.export\(/);
    expect(thrown(() => decodeModel(zip('constants.pkl'), { file: 'm.pt' })).message).toMatch(/is a TorchScript archive \(torch\.jit\.save\)/);
    expect(thrown(() => decodeModel(bytes('\x80\x02}q\x00'), { file: 'm.pth' })).message).toMatch(/is a Python pickle/);
    expect(thrown(() => decodeModel(bytes('\x89HDF\r\n\x1a\n\x00'), { file: 'm.h5' })).message).toMatch(/is an HDF5 file \(a Keras model\?\), not an ONNX model — convert it to ONNX, e\.g\. with tf2onnx/);
    expect(thrown(() => decodeModel(bytes('\x1c\x00\x00\x00TFL3\x00'), { file: 'm.tflite' })).message).toMatch(/is a TensorFlow Lite model/);
    // And slimkit's own files beside a model (a trial's `slim info ck/last.ckpt` was called damaged).
    expect(thrown(() => decodeModel(bytes('SLIMCKPT\x01\x00\x00\x00{}'), { file: 'ck/last.ckpt' })).message).toMatch(/^ck\/last\.ckpt: is a slimkit training checkpoint \(--checkpoint-dir\), not an ONNX model — give the model the run wrote/);
    expect(thrown(() => decodeModel(bytes('{"time":"2026-12-01T16:28:00.469Z","event":"start","epoch":0}\n'), { file: 'run.jsonl' })).message).toMatch(/is a slimkit training log \(--log\), not an ONNX model — .*slim curves draws the log/);
    // An image given as the model (a trial's `slim info photo.png` said "illegal tag: field number 0").
    expect(thrown(() => decodeModel(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), { file: 'plane.png' })).message).toMatch(/^plane\.png: is a PNG image, not an ONNX model — give the \.onnx model here; images go to --data/);
    expect(thrown(() => decodeModel(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), { file: 'ship.jpg' })).message).toMatch(/is a JPEG image, not an ONNX model/);
    // Deep nesting (graph → node → If-style subgraph attribute → graph …) must not overflow the stack.
    const wrap = (field: number, payload: Uint8Array): Uint8Array => {
      const head: number[] = [(field << 3) | 2];
      for (let n = payload.length; ; n >>>= 7) {
        if (n < 0x80) { head.push(n); break; }
        head.push((n & 0x7f) | 0x80);
      }
      return Buffer.concat([Uint8Array.from(head), payload]);
    };
    let graph: Uint8Array = new Uint8Array();
    for (let depth = 0; depth < 2000; depth++) graph = wrap(1, wrap(5, wrap(6, graph))); // node, attribute, g
    const deep = Buffer.concat([wrap(7, graph), Uint8Array.from([0x42, 0x02, 0x10, 0x11])]); // + opset_import {version 17}
    expect(thrown(() => decodeModel(deep, { file: 'd.onnx' })).message).toMatch(/^d\.onnx: is not a valid ONNX model: .*(depth|nested)/);
  });
});

describe('files', () => {
  it('removeAtExit: what a process exiting midway (Ctrl-C calls process.exit) registered is removed, what it finished is kept', () => {
    const dir = freshDir();
    const [staging, temp, finished] = [join(dir, '.out.x.tmp'), join(dir, '.m.onnx.x.tmp'), join(dir, 'done.tmp')];
    const io = join(dirname(FIXTURES), '..', 'src', 'onnx', 'io.ts');
    const script = `import { mkdirSync, writeFileSync } from 'node:fs';
      import { removeAtExit } from ${JSON.stringify(io)};
      // Many writes, each registered and done: one exit listener still (no MaxListenersExceededWarning).
      removeAtExit('/nonexistent')();
      const listeners = process.listenerCount('exit');
      for (let i = 0; i < 20; i++) removeAtExit('/nonexistent-' + i)();
      if (process.listenerCount('exit') !== listeners) throw new Error('exit listeners: ' + listeners + ' → ' + process.listenerCount('exit'));
      mkdirSync(${JSON.stringify(staging)}); writeFileSync(${JSON.stringify(join(staging, 'a'))}, 'x');
      writeFileSync(${JSON.stringify(temp)}, 'partial'); writeFileSync(${JSON.stringify(finished)}, 'whole');
      removeAtExit(${JSON.stringify(staging)}); removeAtExit(${JSON.stringify(temp)});
      removeAtExit(${JSON.stringify(finished)})();
      process.exit(130);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).not.toMatch(/MaxListeners/);
    expect(readdirSync(dir)).toEqual(['done.tmp']);
  });

  it('write and read external data that ONNX Runtime also reads', async () => {
    const dir = freshDir();
    const file = join(dir, 'model.onnx');
    const source = join(FIXTURES, 'torch-tiny-resnet.onnx');
    const graph = await readModel(source);
    const { bytes } = await writeModel(graph, file, { externalData: { thresholdBytes: 256 } });
    const modelSize = readFileSync(file).length;
    const dataSize = readFileSync(join(dir, 'model.onnx.data')).length;
    expect(bytes).toBe(modelSize + dataSize);
    expect(modelSize).toBeLessThan(readFileSync(source).length / 2);
    const raw = ModelProto.decode(readFileSync(file));
    expect(raw.graph!.initializer!.filter((t) => t.data_location === 1).length).toBeGreaterThan(5);
    expect(await readModel(file)).toEqual(graph);

    const side = JSON.parse(readFileSync(join(FIXTURES, 'torch-tiny-resnet.json'), 'utf8')) as Sidecar;
    const out = await run(file, { input: new ort.Tensor('float32', Float32Array.from(side.input), side.input_dims) });
    expectClose(out[graph.outputs[0]!.name]!.data as Float32Array, side.output);
    expect(readdirSync(dir).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });

  it('sweep the temp files of earlier writes killed midway on this host, and no one else\'s', async () => {
    const dir = freshDir();
    const file = join(dir, 'model.onnx');
    // A process id that has ended: a child that exits at once.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const orphan = `.model.onnx.${HOST_TAG}.${gone}.0a1b2c3d.tmp`;
    const live = `.model.onnx.${HOST_TAG}.${process.ppid}.0a1b2c3d.tmp`;
    const elsewhere = `.model.onnx.other-host.${gone}.0a1b2c3d.tmp`;
    const otherFile = `.other.onnx.${HOST_TAG}.${gone}.0a1b2c3d.tmp`;
    for (const name of [orphan, live, elsewhere, otherFile]) writeFileSync(join(dir, name), 'partial');
    await writeModel(emptyGraph('g'), file);
    expect(readdirSync(dir).sort()).toEqual([live, otherFile, elsewhere, 'model.onnx'].sort());
  });

  it('refuse external data outside the model folder', async () => {
    const dir = freshDir();
    const inner = join(dir, 'models');
    mkdirSync(inner);
    writeFileSync(join(dir, 'secret.data'), new Uint8Array(4));
    symlinkSync(join(dir, 'secret.data'), join(inner, 'link.data'));
    const withLocation = (location: string, offset = '0'): Uint8Array => rawModel((m) => {
      m.graph!.initializer = [{
        name: 'w', dims: [1], data_type: 1, data_location: 1,
        external_data: [{ key: 'location', value: location }, { key: 'offset', value: offset }, { key: 'length', value: '4' }],
      }];
    });
    const decode = (location: string, offset?: string): SlimError =>
      thrown(() => decodeModel(withLocation(location, offset), { file: join(inner, 'm.onnx'), baseDir: inner }));
    expect(decode('../secret.data').message).toMatch(/initializer 'w': refers to external data '..\/secret.data', which lies outside/);
    expect(decode(join(dir, 'secret.data')).message).toMatch(/absolute path/);
    expect(decode('sub/../../secret.data').message).toMatch(/outside the model's folder/);
    expect(decode('link.data').message).toMatch(/links to a file outside/);
    expect(decode('missing.data').message).toMatch(/does not exist/);
    // A folder gave an internal error (EISDIR), a FIFO blocked the read forever.
    mkdirSync(join(inner, 'sub'));
    expect(decode('sub').message).toMatch(/initializer 'w': refers to external data 'sub', which is not a file/);
    execFileSync('mkfifo', [join(inner, 'pipe')]);
    expect(decode('pipe').message).toMatch(/refers to external data 'pipe', which is not a file/);
    expect(thrown(() => decodeModel(withLocation('x.data'))).message).toMatch(/model's folder is unknown/);
    // A legitimate file, read with a bad offset.
    writeFileSync(join(inner, 'ok.data'), new Uint8Array(new Float32Array([2.5]).buffer));
    expect(decode('ok.data', '4').message).toMatch(/needs bytes 4\.\.8 of 'ok\.data', which has only 4/);
    const ok = decodeModel(withLocation('ok.data'), { baseDir: inner });
    expect(Array.from(ok.initializers.get('w')!.data as Float32Array)).toEqual([2.5]);
  });

  it('write atomically: no temp files left on failure, and nothing half-written', async () => {
    const dir = freshDir();
    const graph = await readModel(join(FIXTURES, 'torch-tiny-mobilenet.onnx'));
    // The target is a non-empty folder: the rename fails after the temp file was written.
    const blocked = join(dir, 'blocked.onnx');
    mkdirSync(blocked);
    writeFileSync(join(blocked, 'keep'), 'x');
    const e = await rejected(writeModel(graph, blocked));
    expect(e.message).toMatch(/blocked\.onnx/);
    expect(readdirSync(dir)).toEqual(['blocked.onnx']);

    expect((await rejected(writeModel(graph, join(dir, 'no', 'such', 'dir.onnx')))).message).toMatch(/folder does not exist/);

    const target = join(dir, 'model.onnx');
    writeFileSync(target, 'old contents');
    await writeModel(graph, target);
    expect(await readModel(target)).toEqual(graph);
    expect(readdirSync(dir).sort()).toEqual(['blocked.onnx', 'model.onnx']);
  });

  it('write through a symbolic link (a chain of them too): the link stays, the model it points at is replaced', async () => {
    const dir = freshDir();
    const graph = await readModel(join(FIXTURES, 'torch-tiny-mobilenet.onnx'));
    mkdirSync(join(dir, 'models'));
    const real = join(dir, 'models', 'v3.onnx');
    writeFileSync(real, 'old contents');
    symlinkSync(join('models', 'v3.onnx'), join(dir, 'current.onnx'));
    symlinkSync('current.onnx', join(dir, 'latest.onnx'));
    await writeModel(graph, join(dir, 'latest.onnx'));
    expect([lstatSync(join(dir, 'latest.onnx')).isSymbolicLink(), lstatSync(join(dir, 'current.onnx')).isSymbolicLink()]).toEqual([true, true]);
    expect(await readModel(real)).toEqual(graph);
    expect(readdirSync(join(dir, 'models'))).toEqual(['v3.onnx']);
    // A dangling link: the file it names is created.
    symlinkSync(join('models', 'v4.onnx'), join(dir, 'next.onnx'));
    await writeModel(graph, join(dir, 'next.onnx'));
    expect(await readModel(join(dir, 'models', 'v4.onnx'))).toEqual(graph);
    // With external data the link is replaced: ONNX Runtime reads the data beside the path it is given.
    symlinkSync(join('models', 'v5.onnx'), join(dir, 'big.onnx'));
    await writeModel(graph, join(dir, 'big.onnx'), { externalData: { thresholdBytes: 16 } });
    expect(lstatSync(join(dir, 'big.onnx')).isFile()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['big.onnx', 'big.onnx.data', 'current.onnx', 'latest.onnx', 'models', 'next.onnx']);
  });

  it('write a file whose name is as long as the file system allows (the temp name must fit too)', async () => {
    const dir = freshDir();
    const graph = await readModel(join(FIXTURES, 'torch-tiny-mobilenet.onnx'));
    const long = join(dir, `${'m'.repeat(250)}.onnx`); // 255 bytes: names of 221 and more failed
    await writeModel(graph, long);
    expect(readdirSync(dir)).toEqual([basename(long)]);
  });

  it('say what a full, read-only or quota-bound disk means, and what to do', () => {
    const error = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: raw text`), { code });
    expect(fileError('m.onnx', error('ENOSPC'), 'write').message).toBe('m.onnx: cannot be written: the disk is full — free space and run again');
    expect(fileError('m.onnx', error('EROFS'), 'write').message).toBe('m.onnx: cannot be written: the file system is read-only — write to a folder you can write in');
    expect(fileError('m.onnx', error('EDQUOT'), 'write').message).toBe('m.onnx: cannot be written: the disk quota is used up — free space and run again');
    expect(fileError('m.onnx', error('ENAMETOOLONG'), 'write').message).toBe('m.onnx: cannot be written: the name is too long for the file system — give a shorter file name');
    expect(fileError('m.onnx', error('EFBIG'), 'write').message).toBe('m.onnx: cannot be written: it would pass the largest file this process may write (ulimit -f) or the file system holds — raise the limit (ulimit -f unlimited) or write to another file system');
  });

  it('name the file when it cannot be read', async () => {
    expect((await rejected(readModel('/nonexistent/m.onnx'))).message).toMatch(/^\/nonexistent\/m\.onnx: does not exist/);
    expect((await rejected(readModel(FIXTURES))).message).toMatch(/is a folder/);
  });

  it('point to the file meant: a name one typo away, the model inside a deploy bundle', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'slim-meant-'));
    try {
      writeFileSync(join(folder, 'mine.onnx'), '');
      expect((await rejected(readModel(join(folder, 'mien.onnx')))).message).toBe(`${join(folder, 'mien.onnx')}: does not exist — did you mean ${join(folder, 'mine.onnx')}?`);
      expect((await rejected(readModel(join(folder, 'other.onnx')))).message).toBe(`${join(folder, 'other.onnx')}: does not exist — check the path`);
      const bundle = join(folder, 'bundle');
      mkdirSync(bundle);
      writeFileSync(join(bundle, 'model.onnx'), '');
      writeFileSync(join(bundle, 'slim.json'), '{}');
      expect((await rejected(readModel(bundle))).message).toBe(`${bundle}: is a folder, not a file — give the model in it: ${join(bundle, 'model.onnx')} (a slim deploy bundle)`);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('validateGraph', () => {
  const x: ValueInfo = { name: 'x', dtype: 'float32', shape: ['n', 4] };
  const relu = (i: string, o: string): Node => node('Relu', [i], [o]);
  const valid = (): Graph => graphOf({ inputs: [x], outputs: [{ name: 'z', dtype: 'float32' }], nodes: [relu('x', 'y'), relu('y', 'z')] });
  const problem = (g: Graph): string => thrown(() => validateGraph(g, { file: 'v.onnx' })).message;

  it('infer types of a valid graph', () => {
    const facts = validateGraph(valid(), { file: 'v.onnx' });
    expect(facts.types.get('z')).toEqual({ dtype: 'float32', shape: ['n', 4] });
  });

  it('load the PyTorch fixtures (file → decode → validate)', async () => {
    for (const name of FIXTURE_NAMES) {
      const loaded = await loadModel(join(FIXTURES, `${name}.onnx`));
      expect(Buffer.compare(loaded.bytes, readFileSync(join(FIXTURES, `${name}.onnx`)))).toBe(0);
      expect(loaded.sizeBytes).toBe(loaded.bytes.length);
      expect(loaded.externalFiles).toEqual([]);
      expect(loaded.facts.types.get(loaded.graph.outputs[0]!.name)).toEqual({ dtype: 'float32', shape: ['batch', 10] });
      expect(loaded.facts.totalMacs).toBeGreaterThan(0);
    }
  });

  it('name each structural problem', () => {
    expect(problem({ ...valid(), outputs: [] })).toMatch(/^v\.onnx: has no outputs/);
    expect(problem({ ...valid(), outputs: [{ name: 'ghost', dtype: 'float32' }] }))
      .toMatch(/graph output 'ghost': is not produced by any node/);
    expect(problem({ ...valid(), opsets: { 'com.example': 1 } })).toMatch(/no opset for the default ONNX domain \(ai\.onnx\), only 'com\.example'/);
    expect(problem({ ...valid(), opsets: { '': 6 } })).toMatch(/uses ONNX opset 6; slimkit supports opsets 7–21/);
    expect(problem({ ...valid(), opsets: { '': 22 } })).toMatch(/uses ONNX opset 22/);
    expect(problem({ ...valid(), nodes: [relu('x', 'y'), relu('x', 'y'), relu('y', 'z')] })).toMatch(/also produced by node/);
    expect(problem({ ...valid(), nodes: [relu('nowhere', 'y'), relu('y', 'z')] })).toMatch(/input 'nowhere' is not produced/);
    expect(problem({ ...valid(), nodes: [relu('z', 'y'), relu('y', 'z')] })).toMatch(/cycle/);
    expect(problem({ ...valid(), nodes: [node('FooBar', ['x'], ['y']), relu('y', 'z')] })).toMatch(/op FooBar is not supported/);
  });

  it('name the initializer that holds NaN or Inf', () => {
    const withWeight = (t: Tensor): Graph => ({ ...valid(), initializers: new Map([['w', t]]) });
    expect(problem(withWeight(makeTensor('float32', [3], Float32Array.from([1, NaN, Infinity])))))
      .toMatch(/initializer 'w': holds 2 non-finite values \(NaN or Inf; first at element 1\)/);
    expect(problem(withWeight(makeTensor('float16', [2], Uint16Array.from([0x3c00, 0xfc00])))))
      .toMatch(/holds 1 non-finite value .*first at element 1/);
    // Finite but far beyond any trained weight: the trace a damaged exponent byte leaves.
    expect(problem(withWeight(makeTensor('float32', [2], Float32Array.from([0.5, 3.4e38])))))
      .toMatch(/initializer 'w': holds 3\.40e\+38 at element 1, far beyond any trained weight/);
    expect(validateGraph(withWeight(makeTensor('float32', [2], Float32Array.from([0.5, 1e6])))).types.get('w'))
      .toEqual({ dtype: 'float32', shape: [2] });
  });

  it('accept Inf and huge values in scalars (Clip bounds, sentinels)', () => {
    const g = valid();
    const clipped: Graph = {
      ...g,
      outputs: [{ name: 'c', dtype: 'float32' }],
      nodes: [...g.nodes, node('Clip', ['z', 'lo', 'hi'], ['c'])],
      initializers: new Map([['lo', makeTensor('float32', [], Float32Array.of(0))], ['hi', makeTensor('float32', [], Float32Array.of(Infinity))]]),
    };
    expect(validateGraph(clipped).types.get('c')).toEqual({ dtype: 'float32', shape: ['n', 4] });
    // NaN is never a bound: a NaN scale or bound is a damaged file.
    clipped.initializers.set('hi', makeTensor('float32', [], Float32Array.of(NaN)));
    expect(problem(clipped)).toMatch(/initializer 'hi': holds 1 non-finite value/);
  });

  it('reject a model file whose external data is missing when loaded', async () => {
    const dir = freshDir();
    const file = join(dir, 'm.onnx');
    await writeModel(await readModel(join(FIXTURES, 'torch-tiny-resnet.onnx')), file, { externalData: true });
    rmSync(join(dir, 'm.onnx.data'));
    expect(existsSync(file)).toBe(true);
    expect((await rejected(loadModel(file))).message).toMatch(/external data 'm\.onnx\.data', which does not exist/);
  });

  it('refuse a model exported in training mode (its predictions depend on the batch); slim info shows it with that warning', async () => {
    // torch.onnx.export(..., training=TrainingMode.TRAINING) at opset 17: BN with training_mode=1 and its statistics outputs.
    const dir = freshDir();
    const file = join(dir, 'train-mode.onnx');
    const g: Graph = {
      ...emptyGraph('torch_jit'),
      opsets: { '': 17 },
      inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 2, 4, 4] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['N', 2, 4, 4] }],
      nodes: [{ name: '/bn/BatchNormalization', opType: 'BatchNormalization', domain: '', inputs: ['x', 's', 'b', 'm', 'v'], outputs: ['y', 'rm', 'rv'], attributes: { training_mode: { type: 'int', value: 1 } } }],
      initializers: new Map(['s', 'b', 'm', 'v'].map((n) => [n, makeTensor('float32', [2], Float32Array.of(1, 1))])),
    };
    await writeModel(g, file);
    expect((await rejected(loadModel(file))).message).toBe(`${file}: was exported in training mode: 1 BatchNormalization(s) (e.g. '/bn/BatchNormalization') normalize by each batch's own statistics, so a prediction depends on the other images in its batch — ${TRAINING_MODE_FIX}`);
    expect(trainingModeProblem(g)).toBeDefined();
    expect((await loadModelForRuntime(file, { inspectOnly: true })).graph.nodes).toHaveLength(1);
    const info = await runSlim(['info', file]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stderr).toContain(`warning: ${file} was exported in training mode: 1 BatchNormalization(s)`);
    // The inference form (one output, training_mode 0) and a Dropout told not to drop are inference models.
    const inference = { ...g, nodes: [{ ...g.nodes[0]!, outputs: ['y'], attributes: {} }] };
    expect(trainingModeProblem(inference)).toBeUndefined();
    const dropout = (on: boolean): Graph => ({ ...inference, nodes: [...inference.nodes.map((n) => ({ ...n, outputs: ['z'] })), { name: 'drop', opType: 'Dropout', domain: '', inputs: ['z', 'ratio', 'train'], outputs: ['y'], attributes: {} }], initializers: new Map([...inference.initializers, ['ratio', makeTensor('float32', [], Float32Array.of(0.5))], ['train', makeTensor('bool', [], Uint8Array.of(on ? 1 : 0))]]) });
    expect(trainingModeProblem(dropout(true))).toMatch(/1 Dropout\(s\) \(e\.g\. 'drop'\) drop activations at random$/);
    expect(trainingModeProblem(dropout(false))).toBeUndefined();
  });
});

describe.skipIf(!existsSync('/usr/include/onnx/onnx.proto'))('generated schema', () => {
  it('src/onnx/onnx-schema.ts is what scripts/gen-onnx-schema.ts makes from onnx.proto', () => {
    const out = join(freshDir(), 'schema.ts');
    const root = join(FIXTURES, '..', '..');
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'gen-onnx-schema.ts'), '--out', out], { cwd: root });
    // The header names the output path; the rest must match byte for byte.
    const body = (path: string): string => readFileSync(path, 'utf8').split('\n').slice(3).join('\n');
    expect(body(out)).toBe(body(join(root, 'src', 'onnx', 'onnx-schema.ts')));
  });
});

describe('encoder guards', () => {
  it('refuses a tensor whose data does not fill its dims, before writing anything', async () => {
    const { emptyGraph } = await import('../src/onnx/graph.js');
    const { encodeModel } = await import('../src/onnx/io.js');
    const g = emptyGraph('bad');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [5] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [5] }];
    g.initializers.set('w', { dtype: 'float32', dims: [5], data: new Float32Array(4) });
    g.nodes = [{ name: 'add', opType: 'Add', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }];
    expect(() => encodeModel(g)).toThrow(/has 4 elements but dims \[5\] need 5/);
  });
});

describe('weight plausibility', () => {
  it('refuses a float initializer with a value no trained network has (a damaged exponent byte)', async () => {
    const { emptyGraph } = await import('../src/onnx/graph.js');
    const { validateGraph } = await import('../src/onnx/validate.js');
    const g = emptyGraph('damaged');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [3] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [3] }];
    g.initializers.set('w', { dtype: 'float32', dims: [3], data: Float32Array.from([0.5, -2.6e36, 0.1]) });
    g.nodes = [{ name: 'mul', opType: 'Mul', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }];
    expect(() => validateGraph(g, { file: 'm.onnx' })).toThrow(/m\.onnx: initializer 'w': holds -2\.60e\+36 at element 1/);
    g.initializers.set('w', { dtype: 'float32', dims: [3], data: Float32Array.from([0.5, -2.6e6, 0.1]) });
    expect(() => validateGraph(g, { file: 'm.onnx' })).not.toThrow();
  });
});
