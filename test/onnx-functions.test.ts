import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, readModel } from '../src/onnx/io.js';
import { ATTRIBUTE_TYPE, ModelProto, type IAttributeProto, type IModelProto, type INodeProto } from '../src/onnx/proto.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { openSession, runGraph } from '../src/runtime/ort.js';
import { modelStats } from '../src/runtime/stats.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, maxAbsDiff, torchSidecar } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-functions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The oracle: ONNX Runtime on the file's own bytes, functions and all. */
async function runBytes(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await openSession(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.close();
  }
}

describe('models with local functions (torch.onnx export_modules_as_functions) are inlined on reading', () => {
  // TinyResNet with nn.Sequential (conv-BN-ReLU stem, conv-BN downsample) and nn.ReLU as functions,
  // the stem's function calling the ReLU one.
  const file = 'torch-tiny-resnet-functions.onnx';

  it('reads plain ops that compute what the file computes, and counts the parameters inside the calls', async () => {
    const bytes = readFileSync(fixturePath(file));
    expect(ModelProto.decode(bytes).functions).toHaveLength(3);
    const graph = await readModel(fixturePath(file));
    expect(Object.keys(graph.opsets)).toEqual(['']);
    expect(graph.nodes.filter((n) => n.domain !== '')).toEqual([]);
    expect(graph.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(5);
    const torch = torchSidecar(file);
    const theirs = (await runBytes(bytes, { input: torch.input }))['logits']!;
    const ours = (await runGraph(graph, { input: torch.input }))['logits']!;
    expect(maxAbsDiff(ours, theirs)).toBe(0);
    expect(maxAbsDiff(ours, torch.output)).toBeLessThan(1e-5);
    // The same architecture exported without functions: the same parameter and MAC counts.
    const plain = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const count = (g: typeof graph) => modelStats(g, inferShapes(g));
    expect(count(graph).params).toBe(count(plain).params);
    expect(count(graph).macs).toBe(count(plain).macs);
  });

  it('slim prune takes it (it stopped at "op Sequential in domain torch.nn.modules.container is not supported")', async () => {
    const run = await runSlim(['prune', fixturePath(file), '-o', path.join(dir, 'p.onnx'), '--structured', '--ratio', '0.25', '--json']);
    expect(run.code, run.stderr).toBe(0);
    // slim info says how it was written and what the commands do about it, as for the other export forms.
    const info = await runSlim(['info', fixturePath(file)]);
    expect(info.stdout + info.stderr).toMatch(/written with model-local functions \(export_modules_as_functions: [^)]*Sequential[^)]*\): every command reads it with their calls inlined/);
    // The model written holds plain ops: nothing to say about it.
    expect((await runSlim(['info', path.join(dir, 'p.onnx')])).stdout).not.toMatch(/model-local functions/);
  }, 60_000);

  const node = (opType: string, input: string[], output: string[], extra: Partial<INodeProto> = {}): INodeProto => ({ op_type: opType, input, output, ...extra });
  const refAttr = (name: string, ref: string): IAttributeProto => ({ name, type: ATTRIBUTE_TYPE.FLOAT, ref_attr_name: ref });
  const floatAttr = (name: string, f: number): IAttributeProto => ({ name, type: ATTRIBUTE_TYPE.FLOAT, f });
  const vinfo = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 2 }, { dim_value: 3 }] } } } });

  /** y = Leaky(alpha=a1)(Leaky(x)) through nested functions: `Act` applies LeakyRelu(alpha = its alpha). */
  function modelWithFunctions(outerCalls: INodeProto[], functions = defaultFunctions()): IModelProto {
    return {
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
      graph: { name: 'g', node: outerCalls, input: [vinfo('x')], output: [vinfo('y')] },
      functions,
    };
  }
  function defaultFunctions(): NonNullable<IModelProto['functions']> {
    return [
      { name: 'Act', domain: 'local', input: ['a'], output: ['b'], attribute: ['alpha'], opset_import: [{ domain: '', version: 17 }],
        node: [node('LeakyRelu', ['a'], ['b'], { attribute: [refAttr('alpha', 'alpha')] })] },
      // Twice Act, the second with the caller's slope; `t` is internal and must not clash between calls.
      { name: 'Twice', domain: 'local', input: ['u'], output: ['v'], attribute: ['slope'], opset_import: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
        node: [node('Act', ['u'], ['t'], { domain: 'local', attribute: [floatAttr('alpha', 0.5)] }), node('Act', ['t'], ['v'], { domain: 'local', attribute: [refAttr('alpha', 'slope')] })] },
    ];
  }

  it('fills attributes that refer to the call\'s, leaves unset ones at the default, keeps internal names apart', async () => {
    const proto = modelWithFunctions([
      node('Twice', ['x'], ['m'], { domain: 'local', name: 'first', attribute: [floatAttr('slope', 0.25)] }),
      node('Twice', ['m'], ['y'], { domain: 'local', name: 'second' }), // slope unset: LeakyRelu's default 0.01
    ]);
    const bytes = ModelProto.encode(proto);
    const graph = decodeModel(bytes);
    expect(graph.nodes.map((n) => [n.opType, n.attributes['alpha']?.value])).toEqual([['LeakyRelu', 0.5], ['LeakyRelu', 0.25], ['LeakyRelu', 0.5], ['LeakyRelu', undefined]]);
    const x = float32([2, 3], [-1, -2, -4, 1, 2, 3]);
    const expected = (await runBytes(bytes, { x }))['y']!;
    // ONNX Runtime read the slopes as we did: 0.5, 0.25 (the first call's), 0.5, 0.01 (the default).
    expect(maxAbsDiff(expected, float32([2, 3], [-1, -2, -4, 1, 2, 3].map((v) => (v < 0 ? v * 0.5 * 0.25 * 0.5 * 0.01 : v))))).toBeLessThan(1e-9);
    expect(maxAbsDiff((await runGraph(graph, { x }))['y']!, expected)).toBe(0);
    expect(decodeModel(encodeModel(graph).model).nodes).toHaveLength(4);
  });

  it('keeps inlined names apart from unread initializers, and the domains only a function imported', async () => {
    const fns = [{ name: 'Blk', domain: 'local', input: ['a'], output: ['b'], opset_import: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      node: [node('Relu', ['a'], ['t']), node('Gelu', ['t'], ['b'], { domain: 'com.microsoft' })] }];
    const proto = modelWithFunctions([node('Blk', ['x'], ['y'], { domain: 'local', name: 'blk' })], fns);
    proto.graph!.initializer = [{ name: 'blk/t', dims: [1], data_type: 1, float_data: [7] }];
    const bytes = ModelProto.encode(proto);
    const graph = decodeModel(bytes);
    expect(graph.opsets).toEqual({ '': 17, 'com.microsoft': 1 });
    expect(graph.nodes.map((n) => n.outputs[0])).toEqual(['blk/t_1', 'y']);
    const x = float32([2, 3], [-1, -2, -4, 1, 2, 3]);
    // The re-encoded model still loads (the com.microsoft import travelled) and computes the same.
    expect(maxAbsDiff((await runBytes(encodeModel(graph).model, { x }))['y']!, (await runBytes(bytes, { x }))['y']!)).toBe(0);
  });

  it('refuses a call that leaves an attribute to a default the function declares (IR 9\'s attribute_proto, not in ONNX 1.12\'s onnx.proto)', () => {
    const functions = defaultFunctions();
    functions[1]!.attribute = []; // 'slope' is referenced but not declared without a default: it has one
    const proto = modelWithFunctions([node('Twice', ['x'], ['y'], { domain: 'local' })], functions);
    proto.ir_version = 9;
    expect(() => decodeModel(ModelProto.encode(proto), { file: 'm.onnx' })).toThrow(/m\.onnx: a call of local function 'Twice' leaves attribute 'slope' to the function's default/);
    // Declared without a default: the op's own default applies, at any IR version.
    const declared = modelWithFunctions([node('Twice', ['x'], ['y'], { domain: 'local' })]);
    declared.ir_version = 9;
    expect(decodeModel(ModelProto.encode(declared)).nodes.map((n) => n.attributes['alpha']?.value)).toEqual([0.5, undefined]);
  });

  it('refuses a function that calls itself, naming it', () => {
    const loop = [{ name: 'Loop', domain: 'local', input: ['a'], output: ['b'], opset_import: [{ domain: '', version: 17 }], node: [node('Loop', ['a'], ['b'], { domain: 'local' })] }];
    const bytes = ModelProto.encode(modelWithFunctions([node('Loop', ['x'], ['y'], { domain: 'local' })], loop));
    expect(() => decodeModel(bytes, { file: 'm.onnx' })).toThrow(/m\.onnx: local function 'Loop' calls itself/);
  });

  it('refuses calls that double at every level (2^30 nodes) instead of running out of memory', () => {
    const levels = Array.from({ length: 30 }, (_, k) => ({
      name: `F${k}`, domain: 'local', input: ['a'], output: ['b'], opset_import: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
      node: k === 29 ? [node('Relu', ['a'], ['b'])] : [node(`F${k + 1}`, ['a'], ['m'], { domain: 'local' }), node(`F${k + 1}`, ['m'], ['b'], { domain: 'local' })],
    }));
    const bytes = ModelProto.encode(modelWithFunctions([node('F0', ['x'], ['y'], { domain: 'local' })], levels));
    expect(() => decodeModel(bytes)).toThrow(/local functions expand to more than 1,000,000 nodes/);
  });
});
