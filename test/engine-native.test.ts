import './helpers/engine-env.js';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { compilePlan, encodePlan } from '../src/engine/compile.js';
import { KERNELS } from '../src/engine/lowering.js';
import { loadNative, loadNativeFrom, nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import { emptyGraph, type Graph } from '../src/onnx/graph.js';
import { float32, int64 } from '../src/onnx/tensor.js';
import { OPS } from '../src/ops/registry.js';
import { smallCnn } from './helpers/engine-nets.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIND = path.join(ROOT, 'scripts', 'find-libtorch.mjs');

function chain(ops: { op: string; inputs: string[]; attrs?: Graph['nodes'][number]['attributes'] }[], tensors: Graph['initializers'] = new Map()): Graph {
  const g = emptyGraph('chain', 17);
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 3, 8, 8] }];
  g.nodes = ops.map((o, k) => ({ name: `n${k}`, opType: o.op, domain: '', inputs: o.inputs, outputs: [`v${k}`], attributes: o.attrs ?? {} }));
  g.outputs = [{ name: `v${ops.length - 1}`, dtype: 'float32' }];
  g.initializers = tensors;
  return g;
}

describe('LibTorch discovery and the addon loader', () => {
  it('the addon is built here (scripts/setup.sh builds it unless SLIM_SKIP_NATIVE=1 or SLIM_SKIP_APT=1)', () => {
    if (process.env.SLIM_SKIP_NATIVE === '1' || process.env.SLIM_SKIP_APT === '1') return;
    expect(nativeAvailable(), 'npm run build:native has not been run, or the addon does not load').toBe(true);
  });

  it('a missing addon is a SlimError that says how to enable training', () => {
    const error = (() => {
      try {
        loadNativeFrom(path.join(ROOT, 'native', 'build', 'nowhere', 'slimkit_torch.node'));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(SlimError);
    const message = (error as SlimError).message;
    expect(message).toMatch(/training addon is not built/);
    expect(message).toMatch(/apt install libtorch-dev/);
    expect(message).toMatch(/LIBTORCH=/);
    expect(message).toMatch(/npm run build:native/);
  });

  it('find-libtorch follows $LIBTORCH and rejects a folder that is not LibTorch', () => {
    const bad = spawnSync(process.execPath, [FIND], { env: { ...process.env, LIBTORCH: ROOT }, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/is not a libtorch folder/);
    const found = JSON.parse(execFileSync(process.execPath, [FIND], { encoding: 'utf8' })) as { source: string; root: string };
    if (!nativeAvailable()) return;
    // Any torch folder found by the default search also works as $LIBTORCH.
    const viaEnv = JSON.parse(execFileSync(process.execPath, [FIND], { env: { ...process.env, LIBTORCH: found.root }, encoding: 'utf8' })) as {
      source: string; libs: string[]; includeDirs: string[]; defines: string[]; version: string;
    };
    expect(viaEnv.source).toBe('LIBTORCH');
    expect(viaEnv.libs).toEqual(expect.arrayContaining(['-ltorch', '-ltorch_cpu', '-lc10']));
    expect(viaEnv.defines).toContain('_GLIBCXX_USE_CXX11_ABI=1');
    expect(viaEnv.version).toBe(loadNative().info().torchVersion);
  });
});

describe('find-libtorch version', () => {
  /** readVersion + cxxStandard on a made-up include folder, in a child Node (the script is plain ESM). */
  function versionOf(files: Record<string, string>): { version: unknown; std: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slim-torch-headers-'));
    try {
      for (const [name, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), text);
      }
      const script = `import { readVersion, cxxStandard } from ${JSON.stringify(FIND)};
        const v = readVersion([${JSON.stringify(path.join(dir, 'torch/csrc/api/include'))}, ${JSON.stringify(dir)}]);
        console.log(JSON.stringify({ version: v ?? null, std: cxxStandard(v) }));`;
      return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { version: unknown; std: string };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const macros = (major: number, minor: number) =>
    `#define TORCH_VERSION_MAJOR ${major}\n#define TORCH_VERSION_MINOR ${minor}\n#define TORCH_VERSION_PATCH 1\n`;

  it('reads the version where 1.x/2.6 keep it and where later releases moved it, and picks C++20 from 2.13', () => {
    expect(versionOf({ 'torch/csrc/api/include/torch/version.h': macros(1, 13) })).toEqual({ version: { major: 1, minor: 13, patch: 1 }, std: 'c++17' });
    // 2.14's api version.h only includes the header-only one; reading it alone gave "unknown" and C++17,
    // which LibTorch 2.13+ headers refuse with #error.
    expect(versionOf({
      'torch/csrc/api/include/torch/version.h': '#include <torch/headeronly/version.h>\n',
      'torch/headeronly/version.h': macros(2, 14),
    })).toEqual({ version: { major: 2, minor: 14, patch: 1 }, std: 'c++20' });
    expect(versionOf({})).toEqual({ version: null, std: 'c++17' });
  });
});

describe('plan compiler', () => {
  it('names the node and op that cannot be trained', () => {
    const g = chain([{ op: 'Relu', inputs: ['x'] }, { op: 'Shape', inputs: ['v0'] }]);
    g.outputs = [{ name: 'v1', dtype: 'int64' }];
    expect(() => compilePlan(g)).toThrow(SlimError);
    expect(() => compilePlan(g)).toThrow(/node 'n1' \(Shape\): the model reads a shape at run time where training needs it static — slimkit folds only shape computations that follow the batch alone: export the model without dynamic_axes/);
    const other = chain([{ op: 'Relu', inputs: ['x'] }, { op: 'Cast', inputs: ['v0'], attrs: { to: { type: 'int', value: 1 } } }]);
    expect(() => compilePlan(other)).toThrow(/node 'n1' \(Cast\): op Cast has no training lowering — the engine trains graphs made of .*Conv/);
  });

  it('says when a shape must be a constant', () => {
    const g = emptyGraph('dyn', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [2, 3] }, { name: 's', dtype: 'int64', shape: [2] }];
    g.nodes = [{ name: 'r', opType: 'Reshape', domain: '', inputs: ['x', 's'], outputs: ['y'], attributes: {} }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    expect(() => compilePlan(g)).toThrow(/one image input/);
    g.inputs = [g.inputs[0]!];
    g.initializers.set('s', int64([2], [3, 2]));
    expect(compilePlan(g).steps[0]).toMatchObject({ kernel: 'reshape', ints: [0, 3, 2] });
  });

  it('trains the loss on the logits before a final Softmax, and sorts tensors into roles', () => {
    const g = chain([
      { op: 'Conv', inputs: ['x', 'w', 'b'], attrs: { kernel_shape: { type: 'ints', value: [3, 3] } } },
      { op: 'Flatten', inputs: ['v0'] },
      { op: 'Softmax', inputs: ['v1'], attrs: { axis: { type: 'int', value: 1 } } },
    ], new Map([['w', float32([2, 3, 3, 3], new Array(54).fill(0.1))], ['b', float32([2], [0, 1])]]));
    const plan = compilePlan(g);
    expect(plan.logits.name).toBe('v1');
    expect(plan.outputs.map((o) => o.name)).toEqual(['v2']);
    expect(plan.tensors.map((t) => [t.name, t.role, t.decay])).toEqual([['w', 0, true], ['b', 0, false]]);
    const frozen = compilePlan(g, { frozen: new Set(['w']), decayOnlyWeights: false });
    expect(frozen.tensors.map((t) => [t.name, t.role, t.decay])).toEqual([['w', 2, false], ['b', 0, true]]);
    const encoded = encodePlan(plan, KERNELS);
    // [kernel, nIn, nOut, nInt, nFloat, ...in, ...out, ...ints] per step.
    expect(Array.from(encoded.code.subarray(0, 5))).toEqual([KERNELS.indexOf('conv'), 3, 1, 10, 0]);
  });

  it("GroupNorm as torch exports it trains its own affine, not the InstanceNormalization's constant 1s and 0s", () => {
    const groupNorm = (ones: number[], zeros: number[]): Graph => {
      const g = emptyGraph('gn', 17);
      g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 6, 3, 3] }];
      g.nodes = [
        { name: 'to_groups', opType: 'Reshape', domain: '', inputs: ['x', 'grouped'], outputs: ['g'], attributes: {} },
        { name: 'norm', opType: 'InstanceNormalization', domain: '', inputs: ['g', 'ones', 'zeros'], outputs: ['n'], attributes: {} },
        { name: 'back', opType: 'Reshape', domain: '', inputs: ['n', 'shape'], outputs: ['r'], attributes: {} },
        { name: 'scale', opType: 'Mul', domain: '', inputs: ['r', 'gamma'], outputs: ['m'], attributes: {} },
        { name: 'shift', opType: 'Add', domain: '', inputs: ['m', 'beta'], outputs: ['y'], attributes: {} },
        { name: 'flat', opType: 'Flatten', domain: '', inputs: ['y'], outputs: ['logits'], attributes: {} },
      ];
      g.outputs = [{ name: 'logits', dtype: 'float32', shape: ['batch', 54] }];
      for (const [k, t] of [['grouped', int64([3], [0, 3, -1])], ['shape', int64([4], [0, 6, 3, 3])], ['ones', float32([3], ones)], ['zeros', float32([3], zeros)],
        ['gamma', float32([6, 1, 1], [1, 2, 3, 4, 5, 6])], ['beta', float32([6, 1, 1], [0, 0, 0, 1, 1, 1])]] as const) g.initializers.set(k, t);
      return g;
    };
    const roles = (g: Graph): Record<string, [number, boolean]> =>
      Object.fromEntries(compilePlan(g).tensors.filter((t) => t.value.dtype === 'float32').map((t) => [t.name, [t.role, t.decay]]));
    // GroupNorm's γ and β ([6, 1, 1] after the Reshape) train, without weight decay, as 1-D parameters do.
    expect(roles(groupNorm([1, 1, 1], [0, 0, 0]))).toEqual({ ones: [2, false], zeros: [2, false], gamma: [0, false], beta: [0, false] });
    // Not the export's constants (an InstanceNorm someone gave values): they train.
    expect(roles(groupNorm([1, 2, 1], [0, 0, 0]))).toEqual({ ones: [0, false], zeros: [0, false], gamma: [0, false], beta: [0, false] });
    // A per-channel scale and mean applied to the model's input is preprocessing: fixed. A scalar too.
    const pre = emptyGraph('pre', 17);
    pre.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 3, 2, 2] }];
    pre.nodes = [
      { name: 'centre', opType: 'Add', domain: '', inputs: ['x', 'minus_mean'], outputs: ['c'], attributes: {} },
      { name: 'scale', opType: 'Mul', domain: '', inputs: ['c', 'inv_std'], outputs: ['s'], attributes: {} },
      { name: 'conv', opType: 'Conv', domain: '', inputs: ['s', 'w'], outputs: ['y'], attributes: {} },
      { name: 'half', opType: 'Mul', domain: '', inputs: ['y', 'half'], outputs: ['h'], attributes: {} },
      { name: 'layer_scale', opType: 'Mul', domain: '', inputs: ['h', 'ls'], outputs: ['l'], attributes: {} },
      { name: 'flat', opType: 'Flatten', domain: '', inputs: ['l'], outputs: ['logits'], attributes: {} },
    ];
    pre.outputs = [{ name: 'logits', dtype: 'float32', shape: ['batch', 8] }];
    for (const [k, t] of [['minus_mean', float32([1, 3, 1, 1], [-0.5, -0.4, -0.3])], ['inv_std', float32([1, 3, 1, 1], [4, 4, 4])], ['w', float32([2, 3, 1, 1], [1, 2, 3, 4, 5, 6])],
      ['half', float32([], [0.5])], ['ls', float32([2, 1, 1], [1e-6, 1e-6])]] as const) pre.initializers.set(k, t);
    expect(roles(pre)).toEqual({ minus_mean: [2, false], inv_std: [2, false], w: [0, true], half: [2, false], ls: [0, false] });
    // Behind a crop too (a Slice before the mean and scale): still before the first layer, still fixed.
    const cropped: Graph = { ...pre, initializers: new Map(pre.initializers), nodes: [
      { name: 'crop', opType: 'Slice', domain: '', inputs: ['x', 'starts', 'ends', 'axes'], outputs: ['x_crop'], attributes: {} },
      ...pre.nodes.map((n) => (n.name === 'centre' ? { ...n, inputs: ['x_crop', 'minus_mean'] } : n)),
    ] };
    for (const [k, t] of [['starts', int64([2], [0, 0])], ['ends', int64([2], [1, 1])], ['axes', int64([2], [2, 3])]] as const) cropped.initializers.set(k, t);
    cropped.outputs = [{ name: 'logits', dtype: 'float32', shape: ['batch', 2] }];
    expect(roles(cropped)).toEqual({ minus_mean: [2, false], inv_std: [2, false], w: [0, true], half: [2, false], ls: [0, false] });
    // A Conv weight with one axis longer than 1 (a squeeze to one channel) is still a weight: decayed.
    const squeeze: Graph = { ...pre, initializers: new Map(pre.initializers) };
    squeeze.initializers.set('w', float32([1, 3, 1, 1], [1, 2, 3]));
    squeeze.initializers.set('ls', float32([1, 1, 1], [0.5]));
    squeeze.outputs = [{ name: 'logits', dtype: 'float32', shape: ['batch', 4] }];
    expect(roles(squeeze)['w']).toEqual([0, true]);
  });

  it('every op with a lowering is registered, and the ResNet/MobileNet ops all have one', () => {
    const lowered = Object.entries(OPS).filter(([, d]) => 'lower' in d && d.lower).map(([op]) => op);
    for (const op of ['Conv', 'BatchNormalization', 'Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Add', 'Mul', 'MaxPool',
      'AveragePool', 'GlobalAveragePool', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Concat', 'QuantizeLinear', 'DequantizeLinear']) {
      expect(lowered).toContain(op);
    }
  });
});

describe.skipIf(!nativeAvailable())('native addon', () => {
  it('implements exactly the kernels the lowerings use', () => {
    expect([...loadNative().kernelNames()].sort()).toEqual([...KERNELS].sort());
  });

  it('reports LibTorch errors as SlimErrors that name the node', () => {
    const plan = EnginePlan.create(smallCnn({ widths: [4, 4, 4] }), { threads: 1 });
    const wrong = float32([1, 5, 32, 32], new Array(5 * 1024).fill(0));
    expect(() => plan.forward(wrong)).toThrow(SlimError);
    expect(() => plan.forward(wrong)).toThrow(/node 'conv0' \(conv\): .*channels/);
    // The plan still works afterwards.
    expect(plan.forward(float32([1, 3, 32, 32], new Array(3072).fill(0)))[0]!.dims).toEqual([1, 10]);
  });

  it('a CUDA plan on a LibTorch without CUDA says what to do', () => {
    let error: unknown;
    try {
      EnginePlan.create(smallCnn({ widths: [4, 4, 4] }), { threads: 1, device: 'cuda' });
    } catch (e) {
      error = e;
    }
    // A GPU host's CUDA build makes the plan: nothing to say there.
    if (error === undefined) return;
    expect(String((error as Error).message)).toMatch(/device 'cuda' was asked for, but this LibTorch has no CUDA or sees no GPU — train with --device cpu here, or on a GPU machine/);
  });

  it('checks the element type of arrays handed to it', () => {
    const addon = loadNative();
    const spec = { labels: new Int32Array(2), dims: [2, 3, 2, 2] as [number, number, number, number], device: 'cpu' as const, scale: 1, mean: [0, 0, 0], std: [1, 1, 1], pad: 0 };
    expect(() => new addon.DataSet({ ...spec, pixels: new Float32Array(24) as unknown as Uint8Array })).toThrow(/elements are 4 bytes, but Byte needs 1/);
    expect(() => new addon.DataSet({ ...spec, pixels: new Uint8Array(23) })).toThrow(/23 elements but its dims need 24/);
    expect(new addon.DataSet({ ...spec, pixels: new Uint8Array(24) }).size).toBe(2);
  });

  it('a plan made for CUDA graphs refuses to step where it cannot capture, and says why', async () => {
    const info = loadNative().info();
    expect(typeof info.cudaGraphs).toBe('boolean');
    const plan = EnginePlan.create(smallCnn({ widths: [4, 4, 4] }), { threads: 1, cudaGraphs: true });
    plan.setOptimizer({ kind: 'sgd', momentum: 0.9 });
    const x = float32([2, 3, 32, 32], new Array(2 * 3072).fill(0.5));
    const step = plan.trainStepOn(x, Int32Array.from([1, 2]), { lr: 0.1 });
    await expect(step).rejects.toThrow(info.cudaGraphs ? /CUDA graphs need --device cuda/ : /no CUDA graph support.*CUDA_HOME/);
    // Nothing was half-done: the same plan trains eagerly once it is asked without graphs.
    const eager = EnginePlan.create(smallCnn({ widths: [4, 4, 4] }), { threads: 1 });
    eager.setOptimizer({ kind: 'sgd', momentum: 0.9 });
    expect((await eager.trainStepOn(x, Int32Array.from([1, 2]), { lr: 0.1 })).count).toBe(2);
  });

  it('reads and writes weights by name', () => {
    const plan = EnginePlan.create(smallCnn({ widths: [4, 4, 4] }), { threads: 1 });
    const w = Float32Array.from({ length: 40 }, (_, k) => k / 40);
    plan.write('fc.weight', w);
    expect(Array.from(plan.read('fc.weight'))).toEqual(Array.from(w));
    expect(Array.from(plan.toGraph().initializers.get('fc.weight')!.data as Float32Array)).toEqual(Array.from(w));
    expect(() => plan.write('fc.weight', new Float32Array(3))).toThrow(/40 elements, got 3/);
    expect(() => plan.read('nope')).toThrow(/no tensor named 'nope'/);
  });
});
