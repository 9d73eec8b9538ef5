import './helpers/engine-env.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forBatches } from '../src/data/model-batches.js';
import { modelInputSize, normalizationFor, withImageSizeFlag } from '../src/data/model-data.js';
import { normalizeInto } from '../src/data/transforms.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { dataInputs, type Graph, type Node } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { nativeAvailable } from '../src/engine/native.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { float32, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { joinPixelPreprocessing, splitPixelPreprocessing } from '../src/passes/pixel-preprocessing.js';
import { renameValue } from '../src/passes/rewrite.js';
import { renormalizeInput } from '../src/passes/renormalize-input.js';
import { teacherForStudent } from '../src/compress/distill/normalization.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { CIFAR_DIR, fixturePath, maxAbsDiff, torchSidecar } from './helpers/fixtures.js';
import { SATURATING_HOST } from './helpers/int8-host.js';
import { runSlim } from './helpers/cli.js';
import { smallCnn } from './helpers/engine-nets.js';
import { withPixelPreprocessing } from './helpers/deploy-models.js';

// torch.onnx export of PixelInput(TinyResNet()) (scripts/make-torch-fixtures.py): uint8 N×16×16×3 pixels in,
// `pixels.permute(0, 3, 1, 2).float() / 255`, `(x − mean) / std` with ImageNet's statistics, then the network.
const PIXELS = 'torch-tiny-resnet-pixels.onnx';
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The sidecar's pixels (uint8 N×H×W×C) and PyTorch's logits for them. */
function pixelSidecar(): { pixels: Tensor<'uint8'>; output: Tensor<'float32'> } {
  const raw = JSON.parse(readFileSync(fixturePath(PIXELS.replace('.onnx', '.json')), 'utf8')) as { input_dims: number[]; input: number[] };
  return { pixels: makeTensor('uint8', raw.input_dims, Uint8Array.from(raw.input)), output: torchSidecar(PIXELS).output };
}

/** N×H×W×C pixels normalized into an N×C×H×W float batch, the way slimkit's loaders feed a network. */
function normalized(pixels: Tensor<'uint8'>, norm: { scale: number; mean: number[]; std: number[] }): Tensor<'float32'> {
  const [n, h, w, c] = pixels.dims as [number, number, number, number];
  const out = new Float32Array(n * c * h * w);
  const planar = new Uint8Array(c * h * w);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) planar[k * h * w + p] = pixels.data[(i * h * w + p) * c + k]!;
    normalizeInto(out, i * c * h * w, planar, 0, [c, h, w], norm);
  }
  return float32([n, c, h, w], out);
}

async function logits(graph: Graph, input: Tensor): Promise<Tensor<'float32'>> {
  const out = await runGraph(graph, { [dataInputs(graph)[0]!.name]: input });
  return out[graph.outputs[0]!.name]! as Tensor<'float32'>;
}

describe('splitPixelPreprocessing: the network inside a model that normalizes raw pixels itself', () => {
  it('cuts torch.onnx\'s Transpose → Cast → Div → Sub → Div off and reads the affine map off its constants', async () => {
    const graph = await readModel(fixturePath(PIXELS));
    const split = splitPixelPreprocessing(graph);
    if ('reason' in split) throw new Error(split.reason);
    const { network, preprocessing: pre } = split;
    expect(pre.nodes.map((n) => n.opType)).toEqual(['Transpose', 'Cast', 'Div', 'Sub', 'Div']);
    expect(dataInputs(network)).toEqual([{ name: pre.cut, dtype: 'float32', shape: ['batch', 3, 16, 16] }]);
    expect(network.nodes[0]!.opType).toBe('Conv');
    // The 255 Constant node and the mean/std initializers belong to the preprocessing only.
    expect(network.nodes.some((n) => n.opType === 'Constant')).toBe(false);
    expect(network.initializers.has('mean') || network.initializers.has('std')).toBe(false);
    expect([...pre.initializers.keys()].sort()).toEqual(['/Constant_output_0', 'mean', 'std']);
    for (let c = 0; c < 3; c++) {
      expect(pre.scale[c]).toBeCloseTo(1 / (255 * IMAGENET.std[c]!), 6);
      expect(pre.shift[c]).toBeCloseTo(-IMAGENET.mean[c]! / IMAGENET.std[c]!, 6);
    }
    // Pure: the model read is unchanged.
    expect(graph.nodes.length).toBe(network.nodes.length + pre.nodes.length + 1);
  });

  it('the network fed slimkit\'s normalized images under the derived mean/std equals the whole model on the pixels (ORT and PyTorch)', async () => {
    const graph = await readModel(fixturePath(PIXELS));
    const working = forBatches(graph, PIXELS, { quiet: true });
    const norm = normalizationFor(working.graph, {});
    for (let c = 0; c < 3; c++) {
      expect(norm.mean[c]).toBeCloseTo(IMAGENET.mean[c]!, 6);
      expect(norm.std[c]).toBeCloseTo(IMAGENET.std[c]!, 6);
    }
    const { pixels, output } = pixelSidecar();
    const whole = await logits(graph, pixels);
    expect(maxAbsDiff(whole, output)).toBeLessThan(1e-5);
    expect(maxAbsDiff(await logits(working.graph, normalized(pixels, norm)), whole)).toBeLessThan(1e-5);
    // Put back together, it is the model again: the same pixels in, the same logits out, no mean/std recorded.
    const restored = working.restore(working.graph);
    expect(dataInputs(restored)).toEqual(dataInputs(graph));
    expect(restored.metadata['slimkit.mean']).toBeUndefined();
    expect(maxAbsDiff(await logits(restored, pixels), whole)).toBe(0);
  });

  it('join renames the preprocessing\'s values and constants out of the way of names the network took since', async () => {
    const graph = await readModel(fixturePath(PIXELS));
    const split = splitPixelPreprocessing(graph);
    if ('reason' in split) throw new Error(split.reason);
    const network = { ...split.network, nodes: split.network.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs] })), valueInfo: new Map(split.network.valueInfo) };
    // A compressed network may well have made values named like the preprocessing's (a pass knows only its own graph).
    renameValue(network, network.nodes[0]!.outputs[0]!, '/Cast_output_0');
    const weight = network.nodes[0]!.inputs[1]!;
    network.initializers = new Map([...network.initializers].map(([k, v]) => [k === weight ? 'mean' : k, v]));
    network.nodes[0]!.inputs[1] = 'mean';
    const joined = joinPixelPreprocessing(network, split.preprocessing);
    expect(joined.initializers.get('mean')!.dims).toEqual(graph.initializers.get(weight)!.dims);
    const { pixels } = pixelSidecar();
    expect(maxAbsDiff(await logits(joined, pixels), await logits(graph, pixels))).toBe(0);
  });

  it('join never gives two constants one name: a fresh name avoids the kept ones too', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const inName = dataInputs(plain)[0]!.name;
    const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node => ({ name, opType, domain: '', inputs, outputs, attributes });
    const graph: Graph = {
      ...plain,
      initializers: new Map([...plain.initializers, ['c_preprocess', float32([], [1 / 255])], ['c', float32([1, 3, 1, 1], [0.4, 0.5, 0.6])]]),
      inputs: [{ name: 'px', dtype: 'uint8', shape: ['n', 16, 16, 3] }],
      nodes: [
        node('t', 'Transpose', ['px'], ['t_out'], { perm: { type: 'ints', value: [0, 3, 1, 2] } }),
        node('cast', 'Cast', ['t_out'], ['cast_out'], { to: { type: 'int', value: 1 } }),
        node('mul', 'Mul', ['cast_out', 'c_preprocess'], ['mul_out']),
        node('sub', 'Sub', ['mul_out', 'c'], [inName]),
        ...plain.nodes,
      ],
    };
    const split = splitPixelPreprocessing(graph);
    if ('reason' in split) throw new Error(split.reason);
    // The network has since made a value named 'c': the preprocessing's 'c' must not become 'c_preprocess'.
    const first = split.network.nodes[0]!;
    const network: Graph = { ...split.network, nodes: split.network.nodes.map((n) => (n === first ? { ...n, outputs: ['c'] } : { ...n, inputs: n.inputs.map((v) => (v === first.outputs[0] ? 'c' : v)) })) };
    const joined = joinPixelPreprocessing(network, split.preprocessing);
    expect(new Set(joined.nodes.slice(0, 4).flatMap((n) => n.inputs.filter((v) => joined.initializers.has(v)))).size).toBe(2);
    const pixels = makeTensor('uint8', [2, 16, 16, 3], Uint8Array.from({ length: 1536 }, (_, i) => (i * 53) % 256));
    expect(maxAbsDiff(await logits(joined, pixels), await logits(graph, pixels))).toBe(0);
  });

  it('an IR 3 model (initializers listed as inputs) keeps the list right: the network drops the preprocessing\'s, the join declares them again', async () => {
    const wrapped = withPixelPreprocessing(await readModel(fixturePath('torch-tiny-resnet-folded.onnx')));
    const ir3: Graph = { ...wrapped, irVersion: 3, inputs: [...wrapped.inputs, ...[...wrapped.initializers].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.dims] }))] };
    const split = splitPixelPreprocessing(ir3);
    if ('reason' in split) throw new Error(split.reason);
    expect(split.network.inputs.some((v) => v.name.startsWith('pre_'))).toBe(false);
    const joined = joinPixelPreprocessing(split.network, split.preprocessing);
    for (const name of joined.initializers.keys()) expect(joined.inputs.filter((v) => v.name === name)).toHaveLength(1);
    const pixels = makeTensor('uint8', [2, 16, 16, 3], Uint8Array.from({ length: 1536 }, (_, i) => (i * 29) % 256));
    expect(maxAbsDiff(await logits(joined, pixels), await logits(wrapped, pixels))).toBe(0);
  });

  it('slimkit\'s own test wrapper (·1/255 as Mul, CIFAR-10 statistics) gives CIFAR-10\'s mean and std back', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const working = forBatches(withPixelPreprocessing(plain), 'wrapped.onnx', { quiet: true });
    const norm = normalizationFor(working.graph, {});
    for (let c = 0; c < 3; c++) {
      expect(norm.mean[c]).toBeCloseTo(CIFAR10_NORMALIZATION.mean[c]!, 6);
      expect(norm.std[c]).toBeCloseTo(CIFAR10_NORMALIZATION.std[c]!, 6);
    }
    expect(dataInputs(working.graph)[0]!.name).toBe(dataInputs(plain)[0]!.name);
  });

  it('a float32 channels-last input is fed normalized: its Transpose alone is cut off and --mean/--std still apply', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const input = dataInputs(plain)[0]!;
    const nhwc: Graph = {
      ...plain,
      inputs: [{ name: 'nhwc', dtype: 'float32', shape: ['n', 16, 16, 3] }],
      nodes: [{ name: 'to_nchw', opType: 'Transpose', domain: '', inputs: ['nhwc'], outputs: [input.name], attributes: { perm: { type: 'ints', value: [0, 3, 1, 2] } } }, ...plain.nodes],
    };
    const working = forBatches(nhwc, 'nhwc.onnx', { quiet: true, data: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } });
    expect(normalizationFor(working.graph, {})).toEqual({ scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect(dataInputs(working.graph)[0]!.shape).toEqual(['n', 3, 16, 16]);
    const x = float32([2, 16, 16, 3], Array.from({ length: 2 * 768 }, (_, i) => Math.sin(i)));
    const back = working.restore(working.graph);
    expect(maxAbsDiff(await logits(back, x), await logits(nhwc, x))).toBe(0);
    // The written model records the statistics its float input is fed with (eval and deploy read them).
    expect(normalizationFor(back, {})).toEqual({ scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  });

  it('a float32 channels-last model that scales inside: --mean/--std (for its input) compose with its own steps', async () => {
    // Takes 0–255 floats channels-last; ÷255, −mean, ÷std inside. Fed as --mean 0 --std 1/255 say: the raw values.
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const floatPixels: Graph = { ...withPixelPreprocessing(plain, { scale: 1 / 255, ...IMAGENET }), inputs: [{ name: 'pixels', dtype: 'float32', shape: ['n', 16, 16, 3] }] };
    floatPixels.nodes = floatPixels.nodes.filter((n) => n.opType !== 'Cast').map((n) => (n.inputs[0] === 'pre_float_out' ? { ...n, inputs: ['pre_nchw_out', ...n.inputs.slice(1)] } : n));
    const working = forBatches(floatPixels, 'floats.onnx', { quiet: true, data: { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] } });
    expect(working.normalization!.mean.map((v) => Number(v.toFixed(6)))).toEqual(IMAGENET.mean);
    expect(working.normalization!.std.map((v) => Number(v.toFixed(6)))).toEqual(IMAGENET.std);
    const { pixels } = pixelSidecar();
    const asFloats = float32(pixels.dims as number[], Array.from(pixels.data));
    expect(maxAbsDiff(await logits(working.graph, normalized(pixels, working.normalization!)), await logits(floatPixels, asFloats))).toBeLessThan(1e-5);
  });

  it('refuses, saying where the preprocessing stops, when no float32 N×C×H×W value can be cut off; and --mean/--std on uint8 input', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const wrapped = withPixelPreprocessing(plain);
    // A Shape reads the pixels too: the chain has no single path to follow.
    const shape: Node = { name: 'peek', opType: 'Shape', domain: '', inputs: ['pixels'], outputs: ['pixels_shape'], attributes: {} };
    const twoReaders: Graph = { ...wrapped, nodes: [shape, ...wrapped.nodes], outputs: [...wrapped.outputs, { name: 'pixels_shape', dtype: 'int64' }] };
    const reason = splitPixelPreprocessing(twoReaders);
    expect(reason).toEqual({ reason: "its preprocessing (no per-pixel step) ends at 'pixels', which is uint8, not float32" });
    expect(() => forBatches(twoReaders, 'two.onnx', { quiet: true })).toThrow(
      /two\.onnx takes uint8 N×H×W×C images and preprocesses them itself, but its preprocessing \(no per-pixel step\) ends at 'pixels', which is uint8, not float32: slimkit feeds normalized float32 N×C×H×W batches — quantize, prune or train the network without its preprocessing/,
    );
    // K / x is not affine in x: the chain stops before it, still channels-last when the Transpose comes after.
    const k = float32([], [2]);
    const reciprocal: Graph = {
      ...plain,
      initializers: new Map([...plain.initializers, ['two', k]]),
      inputs: [{ name: 'nhwc', dtype: 'float32', shape: ['n', 16, 16, 3] }],
      nodes: [
        { name: 'inv', opType: 'Div', domain: '', inputs: ['two', 'nhwc'], outputs: ['inv_out'], attributes: {} },
        { name: 'to_nchw', opType: 'Transpose', domain: '', inputs: ['inv_out'], outputs: [dataInputs(plain)[0]!.name], attributes: { perm: { type: 'ints', value: [0, 3, 1, 2] } } },
        ...plain.nodes,
      ],
    };
    expect(splitPixelPreprocessing(reciprocal)).toEqual({ reason: "its preprocessing (no per-pixel step) ends at 'nhwc', which is still channels-last" });
    expect(() => forBatches(wrapped, 'w.onnx', { quiet: true, data: { mean: [0.5, 0.5, 0.5] } })).toThrow(/w\.onnx takes raw uint8 pixels and normalizes them itself, so --mean\/--std have nothing to describe — drop --mean and --std/);
  });

  it('renormalizeInput: a model fed images normalized one way computes what it computes on its own normalization', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const { pixels } = pixelSidecar();
    const own = { scale: 1 / 255, ...IMAGENET };
    const fed = CIFAR10_NORMALIZATION;
    const adapted = renormalizeInput(plain, fed, own);
    expect(adapted.nodes.slice(0, 2).map((n) => n.opType)).toEqual(['Mul', 'Add']);
    expect(maxAbsDiff(await logits(adapted, normalized(pixels, fed)), await logits(plain, normalized(pixels, own)))).toBeLessThan(1e-5);
    expect(renormalizeInput(plain, fed, fed)).toBe(plain);
  });

  it('teacherForStudent: a teacher that records no statistics expects the default and gets it back; a symbolic channel dim is no obstacle', async () => {
    const gray = await readModel(fixturePath('torch-tiny-resnet-gray.onnx'));
    const mnist = { 'slimkit.mean': '[0.1307]', 'slimkit.std': '[0.3081]' };
    const student: Graph = { ...gray, metadata: { ...gray.metadata, ...mnist } };
    const shared = teacherForStudent(student, gray);
    expect(shared.normalization.mean).toEqual([0.1307]);
    expect(shared.teacher.nodes.slice(0, 2).map((n) => n.opType)).toEqual(['Mul', 'Add']);
    // Fed MNIST-normalized images, the teacher computes what it computes on its default (0.5 / 0.5) ones.
    const rng = new Random(9);
    const px = Uint8Array.from({ length: 2 * 784 }, () => Math.floor(rng.next() * 256));
    const norm = (mean: number, std: number): Tensor<'float32'> => float32([2, 1, 28, 28], Array.from(px, (p) => (p / 255 - mean) / std));
    expect(maxAbsDiff(await logits(shared.teacher, norm(0.1307, 0.3081)), await logits(gray, norm(0.5, 0.5)))).toBeLessThan(1e-4);
    // Same statistics: nothing to put in front, even when the channel dim is a symbol.
    const symbolic: Graph = { ...student, inputs: [{ ...student.inputs[0]!, shape: ['batch', 'c', 28, 28] }] };
    expect(teacherForStudent(student, symbolic).teacher).toBe(symbolic);
    expect(() => teacherForStudent(student, { ...symbolic, metadata: gray.metadata }, { teacher: 't.onnx' })).toThrow(/t\.onnx: its input's channel count is not fixed/);
  });

  it('a free-size channels-last model given --image-size records C×H×W from its last axis, and its network takes that size', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const free: Graph = { ...withPixelPreprocessing(plain), inputs: [{ name: 'pixels', dtype: 'uint8', shape: ['n', 'h', 'w', 3] }] };
    const sized = withImageSizeFlag(free, 'free.onnx', [16, 16], []);
    expect(sized.metadata['slimkit.input_size']).toBe('[3,16,16]');
    const working = forBatches(sized, 'free.onnx', { quiet: true });
    expect(dataInputs(working.graph)[0]!.shape).toEqual(['n', 3, 'h', 'w']);
    expect(modelInputSize(working.graph)).toEqual([16, 16]);
  });

  it('per-channel constants in any broadcastable shape, before or after the Transpose, Sub and Mul either way round', async () => {
    const plain = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const rng = new Random(3);
    const c3 = (): number[] => [0, 1, 2].map(() => 0.5 + rng.next());
    const [a, b, m] = [c3(), c3(), c3()];
    const initializers = new Map([...plain.initializers, ['a', float32([3], a)], ['b', float32([1, 1, 3], b)], ['m', float32([3, 1, 1], m)], ['half', float32([1], [0.5])]]);
    const node = (name: string, opType: string, inputs: string[], attributes: Node['attributes'] = {}): Node => ({ name, opType, domain: '', inputs, outputs: [`${name}_out`], attributes });
    const steps = [
      node('cast', 'Cast', ['px'], { to: { type: 'int', value: 1 } }),
      node('mul', 'Mul', ['a', 'cast_out']), // per channel, last axis while channels-last
      node('sub', 'Sub', ['b', 'mul_out']), // K − x flips the sign
      node('t', 'Transpose', ['sub_out'], { perm: { type: 'ints', value: [0, 3, 1, 2] } }),
      node('add', 'Add', ['t_out', 'm']),
      node('id', 'Identity', ['add_out']),
      node('div', 'Div', ['id_out', 'half']),
    ];
    const graph: Graph = {
      ...plain,
      initializers,
      inputs: [{ name: 'px', dtype: 'uint8', shape: [2, 16, 16, 3] }],
      nodes: [...steps, ...plain.nodes.map((n) => ({ ...n, inputs: n.inputs.map((v) => (v === dataInputs(plain)[0]!.name ? 'div_out' : v)) }))],
    };
    const working = forBatches(graph, 'mixed.onnx', { quiet: true });
    expect(dataInputs(working.graph)[0]).toMatchObject({ name: 'div_out', shape: ['batch', 3, 16, 16] });
    const pixels = makeTensor('uint8', [2, 16, 16, 3], Uint8Array.from({ length: 1536 }, (_, i) => (i * 37) % 256));
    const whole = await logits(graph, pixels);
    expect(maxAbsDiff(await logits(working.graph, normalized(pixels, normalizationFor(working.graph, {}))), whole)).toBeLessThan(1e-4);
    const restored = working.restore(working.graph);
    expect(dataInputs(restored)[0]!.shape).toEqual([2, 16, 16, 3]);
    expect(maxAbsDiff(await logits(restored, pixels), whole)).toBe(0);
  });
});

describe.skipIf(!nativeAvailable() || !existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin')))('commands that feed batches take a raw-pixel model (CIFAR-10)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slim-pixels-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const model = path.join(dir, 'pixels.onnx');
  // Written by the slim train test, the first here; QAT and pruning start from it (a trained model scores far from chance).
  const trained = path.join(dir, 'trained.onnx');
  // ImageNet's statistics inside: a command that fed the network CIFAR-10's default normalization would score differently.
  const imagenet = { scale: 1 / 255, ...IMAGENET };
  const data = ['--data', 'cifar10', '--data-dir', CIFAR_DIR, '--train-limit', '512', '--test-limit', '256', '--batch', '64', '--threads', '2'];

  beforeAll(async () => {
    const plain = foldBatchNorm(smallCnn({ seed: 4, widths: [8, 16, 16] }));
    const { 'slimkit.mean': _m, 'slimkit.std': _s, ...metadata } = plain.metadata;
    await writeModel({ ...withPixelPreprocessing(plain, imagenet), metadata }, model);
  });

  async function expectPixelsIn(file: string): Promise<Graph> {
    const written = await readModel(file);
    expect(dataInputs(written)).toEqual([{ name: 'pixels', dtype: 'uint8', shape: ['n', 32, 32, 3] }]);
    expect(written.nodes.slice(0, 5).map((n) => n.opType)).toEqual(['Transpose', 'Cast', 'Mul', 'Sub', 'Div']);
    expect(written.metadata['slimkit.mean']).toBeUndefined();
    return written;
  }

  it('slim train: ONNX Runtime on the written model (fed pixels) scores what the engine trained (fed normalized images)', async () => {
    const out = trained;
    const run = await runSlim(['train', '--model', model, ...data, '--train-limit', '2048', '--epochs', '2', '--out', out, '--json'], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/mean \[0\.485, 0\.456, 0\.406\] std \[0\.229, 0\.224, 0\.225\]/);
    const r = JSON.parse(run.stdout) as { test_top1: number; onnxruntime_top1: number };
    expect(r.test_top1).toBeGreaterThan(0.15);
    expect(Math.abs(r.onnxruntime_top1 - r.test_top1)).toBeLessThanOrEqual(1 / 256);
    await expectPixelsIn(out);
  }, 300_000);

  it('slim train takes --mean/--std for a float32 channels-last model (its Transpose normalizes nothing) and records them', async () => {
    const plain = foldBatchNorm(smallCnn({ seed: 4, widths: [8, 16, 16] }));
    const input = dataInputs(plain)[0]!;
    const nhwc: Graph = {
      ...plain,
      inputs: [{ name: 'nhwc', dtype: 'float32', shape: ['n', 32, 32, 3] }],
      nodes: [{ name: 'to_nchw', opType: 'Transpose', domain: '', inputs: ['nhwc'], outputs: [input.name], attributes: { perm: { type: 'ints', value: [0, 3, 1, 2] } } }, ...plain.nodes],
    };
    const file = path.join(dir, 'nhwc.onnx');
    const out = path.join(dir, 'nhwc.trained.onnx');
    await writeModel(nhwc, file);
    // Refused before ("normalizes its pixels itself … --mean/--std would not reach it"), with CIFAR-10's statistics named as the model's.
    const run = await runSlim(['train', '--model', file, ...data, '--train-limit', '256', '--epochs', '1', '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--out', out, '--json'], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as { test_top1: number; onnxruntime_top1: number };
    // ORT, fed the images as the recorded statistics say, scores what the engine trained.
    expect(Math.abs(r.onnxruntime_top1 - r.test_top1)).toBeLessThanOrEqual(1 / 256);
    // Each epoch leaves its line, with the test top-1 the run reports.
    expect(run.stderr).toMatch(new RegExp(`^epoch 1/1: train loss \\d+\\.\\d{3}, train top-1 [\\d.]+ %; test loss \\d+\\.\\d{3}, test top-1 ${(r.test_top1 * 100).toFixed(2)} % \\([\\d.]+ s\\)$`, 'm'));
    const written = await readModel(out);
    expect(dataInputs(written)[0]!.shape).toEqual(['n', 32, 32, 3]);
    expect(normalizationFor(written, {})).toEqual({ scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  }, 300_000);

  it('slim quantize --qat: calibrated and fine-tuned as the network; the int8 model takes the pixels and scores as the engine did', async () => {
    const out = path.join(dir, 'qat.onnx');
    // uint8 weights where onnxruntime-node's int8 sums saturate, so that it scores what the engine does (helpers/int8-host.ts).
    const run = await runSlim(['quantize', trained, '-o', out, '--qat', '--epochs', '1', ...data, '--eval-limit', '256', '--json', ...(SATURATING_HOST ? ['--cpu', 'avx2'] : [])], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as { top1_after: number; qat: { engine_top1: number }; ort_float_ops: Record<string, number> };
    expect(r.top1_after).toBeGreaterThan(0.15);
    expect(Math.abs(r.top1_after - r.qat.engine_top1)).toBeLessThanOrEqual(2 / 256);
    const written = await expectPixelsIn(out);
    expect(written.nodes[5]!.opType).toBe('QuantizeLinear');
  }, 300_000);

  it('slim distill: a raw-pixel teacher with ImageNet statistics teaches a CIFAR-normalized zoo student; it scores as slim eval scores it on the pixels', async () => {
    const out = path.join(dir, 'student.onnx');
    const run = await runSlim(['distill', '--teacher', trained, '--student', 'resnet18-cifar', '--width', '0.125', ...data, '--epochs', '1', '--out', out, '--json'], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/the written model takes the images as before/);
    const r = JSON.parse(run.stdout) as { teacher_top1: number };
    const evaluated = await runSlim(['eval', trained, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '256', '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    // The engine fed the teacher's network CIFAR-normalized batches through the renormalizing Mul/Add.
    expect(Math.abs(r.teacher_top1 - (JSON.parse(evaluated.stdout) as { top1: number }).top1)).toBeLessThanOrEqual(1 / 256);
    const student = await readModel(out);
    expect(dataInputs(student)[0]!.dtype).toBe('float32');
    expect(JSON.parse(student.metadata['slimkit.mean']!)).toEqual(CIFAR10_NORMALIZATION.mean);
  }, 300_000);

  it('slim quantize --qat of a float32 channels-last model that scales inside: its top-1 after is the written model\'s, fed as the model is', async () => {
    // The trained model taking its 0–255 values as float32 (no Cast), fed them through --mean 0 --std 1/255.
    const raw = await readModel(trained);
    const cast = raw.nodes.find((n) => n.opType === 'Cast')!;
    const floats: Graph = {
      ...raw,
      inputs: [{ ...raw.inputs[0]!, dtype: 'float32' }],
      nodes: raw.nodes.filter((n) => n !== cast).map((n) => ({ ...n, inputs: n.inputs.map((v) => (v === cast.outputs[0] ? cast.inputs[0]! : v)) })),
    };
    const file = path.join(dir, 'floats.onnx');
    await writeModel(floats, file);
    const flags = ['--mean', '0,0,0', '--std', [1, 1, 1].map(() => 1 / 255).join(',')];
    const out = path.join(dir, 'floats-qat.onnx');
    const run = await runSlim(['quantize', file, '-o', out, '--qat', '--epochs', '1', ...data, '--eval-limit', '256', ...flags, '--json'], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as { top1_after: number; qat: { engine_top1: number } };
    const evaluated = await runSlim(['eval', out, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '256', ...flags, '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(r.top1_after).toBe((JSON.parse(evaluated.stdout) as { top1: number }).top1);
    expect(r.top1_after).toBeGreaterThan(0.15);
  }, 300_000);

  it('slim prune --data: mean replacement measured on the network; the pruned model takes the pixels', async () => {
    const out = path.join(dir, 'pruned.onnx');
    const run = await runSlim(['prune', trained, '-o', out, '--structured', '--target-macs', '0.5', '--round-to', '1', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--calib-samples', '64', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as { macs_before: number; macs_after: number; mean_replacement?: unknown };
    expect(r.macs_after / r.macs_before).toBeLessThanOrEqual(0.5);
    await expectPixelsIn(out);
  }, 120_000);
});
