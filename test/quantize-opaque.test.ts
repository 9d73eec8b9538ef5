/**
 * Ops slimkit has no definition for are left float by quantize: their output types are measured with
 * ONNX Runtime (runtime/opaque-types.ts) and shape inference takes them. Oracles: ONNX Runtime on the
 * float model (the int8 and fp16 models must compute what it computes, within their rounding) and the
 * shapes PyTorch's export runs at.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertFloat16, DEFAULT_STATIC, prepareFloatGraph, quantizeStatic } from '../src/compress/quantize/index.js';
import { emptyGraph, type Graph } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { loadModel } from '../src/onnx/validate.js';
import { upgradeOpset } from '../src/passes/upgrade-opset.js';
import { checkImageSizeFits } from '../src/onnx/image-input.js';
import { anyBatch, fixBatch } from '../src/passes/any-batch.js';
import { withMeasuredOpaqueTypes } from '../src/runtime/opaque-types.js';
import { runGraph } from '../src/runtime/ort.js';
import { quantizeModel } from '../src/toolkit.js';
import { Random } from '../src/util/random.js';
import { fixturePath, maxAbsDiff, randomInput, torchSidecar } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-opaque-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PIXEL_SHUFFLE = fixturePath('torch-tiny-pixelshuffle.onnx');
const only = async (g: Graph, x: Tensor): Promise<Tensor> => Object.values(await runGraph(g, { [g.inputs[0]!.name]: x }, { threads: 1 }))[0]!;

/** Signal-to-noise of `got` against `want`, in dB. */
function sqnr(got: Tensor, want: Tensor): number {
  const [a, b] = [got.data as Float32Array, want.data as Float32Array];
  let [signal, noise] = [0, 0];
  for (let i = 0; i < b.length; i++) [signal, noise] = [signal + b[i]! ** 2, noise + (a[i]! - b[i]!) ** 2];
  return 10 * Math.log10(signal / noise);
}

describe('output types of ops slimkit has no definition for, measured with ONNX Runtime', () => {
  it("stores a PyTorch pixel_shuffle's (DepthToSpace's) output type, its batch as the input's symbol; inference takes it as an opaque node", async () => {
    const given = await readModel(PIXEL_SHUFFLE);
    expect(() => inferShapes(given)).toThrow(/op DepthToSpace is not supported/);
    const { graph, nodes } = await withMeasuredOpaqueTypes(given, PIXEL_SHUFFLE);
    expect(nodes.map((n) => n.opType)).toEqual(['DepthToSpace']);
    // A stride-2 8-channel stem at 32×32, then pixel_shuffle(2) (scripts/make-torch-fixtures.py, TinyPixelShuffleNet).
    expect(graph.valueInfo.get(nodes[0]!.outputs[0]!)).toEqual({ name: nodes[0]!.outputs[0], dtype: 'float32', shape: ['batch', 2, 32, 32] });
    expect(given.valueInfo.size).toBe(0); // pure
    const facts = inferShapes(graph);
    const shuffle = facts.nodes.find((f) => f.node.opType === 'DepthToSpace')!;
    expect(shuffle).toMatchObject({ opaque: true, macs: 0, outputs: [{ dtype: 'float32', shape: ['batch', 2, 32, 32] }] });
    expect(facts.types.get('logits')).toEqual({ dtype: 'float32', shape: ['batch', 10] });
  });

  it('measures ops that move channels into space (DepthToSpace) and leaves a model without such ops as it is', async () => {
    const g = emptyGraph('d2s', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 16, 4, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: ['N', 2, 8, 8] }];
    g.initializers.set('w', float32([2, 4, 1, 1], [1, 0, 0, 0, 0, 1, 0, 0]));
    g.nodes = [
      { name: 'd2s', opType: 'DepthToSpace', domain: '', inputs: ['x'], outputs: ['s'], attributes: { blocksize: { type: 'int', value: 2 } } },
      { name: 'conv', opType: 'Conv', domain: '', inputs: ['s', 'w'], outputs: ['y'], attributes: {} },
    ];
    const { graph } = await withMeasuredOpaqueTypes(g, 'd2s.onnx');
    expect(graph.valueInfo.get('s')?.shape).toEqual(['N', 4, 8, 8]);
    expect(inferShapes(graph).types.get('y')?.shape).toEqual(['N', 2, 8, 8]);
    const plain = emptyGraph('plain', 13);
    expect((await withMeasuredOpaqueTypes(plain, 'plain.onnx')).graph).toBe(plain);
  });

  it('a model exported for one batch size is measured at it, and again once any-batch frees it; a free image size is refused', async () => {
    const given = await readModel(PIXEL_SHUFFLE);
    const at = (shape: (number | string)[]): Graph => ({ ...given, inputs: [{ ...given.inputs[0]!, shape }], outputs: [{ ...given.outputs[0]!, shape: [shape[0]!, 10] }] });
    const exported = (await withMeasuredOpaqueTypes(at([1, 3, 32, 32]), 'b1.onnx')).graph;
    expect(exported.valueInfo.get('/DepthToSpace_output_0')?.shape).toEqual([1, 2, 32, 32]);
    const freed = anyBatch(exported, { file: 'b1.onnx' });
    expect(freed.fixedBatch).toBe(1);
    expect(freed.graph.valueInfo.get('/DepthToSpace_output_0')?.shape).toEqual([freed.freed.symbol, 2, 32, 32]);
    const remeasured = (await withMeasuredOpaqueTypes(freed.graph, 'b1.onnx')).graph;
    expect(remeasured.valueInfo.get('/DepthToSpace_output_0')?.shape).toEqual([freed.freed.symbol, 2, 32, 32]);
    // Set back to the exported batch with the model: the written file's types agree with its input.
    expect(fixBatch(remeasured, 1, freed.freed).valueInfo.get('/DepthToSpace_output_0')?.shape).toEqual([1, 2, 32, 32]);
    await expect(withMeasuredOpaqueTypes(at(['batch', 3, 'height', 'width']), 'free.onnx')).rejects.toThrow(/input 'input' has a free size \[batch, 3, height, width\].*re-export it at the image size it will run at/);
  });

  it('an older opset is not converted around such an op (its meaning at opset 13 is unknown): re-export is the fix', async () => {
    const { graph } = await withMeasuredOpaqueTypes(await readModel(PIXEL_SHUFFLE), PIXEL_SHUFFLE);
    expect(() => upgradeOpset({ ...graph, opsets: { '': 11 } }, { file: 'old.onnx' })).toThrow(/old\.onnx: node '\/DepthToSpace' \(DepthToSpace\): the model is ONNX opset 11, and slimkit cannot convert its DepthToSpace, an op it has no definition for, to opset 13 .* — re-export the model at opset 13 or later/);
  });

  it('a free-size model with such an op is not refused as if no image size fitted it: slimkit cannot tell, ONNX Runtime can', async () => {
    const given = await readModel(PIXEL_SHUFFLE);
    const free = { ...given, inputs: [{ ...given.inputs[0]!, shape: ['batch', 3, 'height', 'width'] }] };
    expect(() => checkImageSizeFits(free, [32, 32], 'free.onnx')).not.toThrow();
  });

  it('loadModel (prune, train, distill) still refuses the op, even with its types stored in the file', async () => {
    const { graph } = await withMeasuredOpaqueTypes(await readModel(PIXEL_SHUFFLE), PIXEL_SHUFFLE);
    const file = path.join(dir, 'measured.onnx');
    await writeModel(graph, file);
    expect((await readModel(file)).valueInfo.get('/DepthToSpace_output_0')?.shape).toEqual(['batch', 2, 32, 32]);
    await expect(loadModel(file)).rejects.toThrow(/op DepthToSpace is not supported.*quantize leaves it float; prune and train need each op/);
    // Every such op is named at once (one at a time cost an export each).
    const two = { ...graph, nodes: graph.nodes.map((n) => (n.opType === 'Relu' ? { ...n, opType: 'Celu2' } : n)) };
    await writeModel(two, file);
    await expect(loadModel(file)).rejects.toThrow(/: op \w+ is not supported \(nor (Celu2|DepthToSpace)\) — .*export the model without (DepthToSpace, Celu2|Celu2, DepthToSpace), and/);
  });
});

describe('quantize leaves such an op float', () => {
  const { input } = torchSidecar('torch-tiny-pixelshuffle.onnx');
  const calibration = Array.from({ length: 4 }, (_, i) => ({ input: randomInput([8, 3, 32, 32], 10 + i) }));

  it('static int8: the DepthToSpace stays as exported between int8 layers, and the model computes what the float one does', async () => {
    const { graph: measured } = await withMeasuredOpaqueTypes(await readModel(PIXEL_SHUFFLE), PIXEL_SHUFFLE);
    const { graph: int8, plan } = await quantizeStatic(measured, calibration, DEFAULT_STATIC, { threads: 1 });
    const shuffle = int8.nodes.filter((n) => n.opType === 'DepthToSpace');
    expect(shuffle).toHaveLength(1);
    expect(shuffle[0]!.attributes).toEqual(measured.nodes.find((n) => n.opType === 'DepthToSpace')!.attributes);
    // Its input is dequantized (the Conv before it is int8), its output quantized for the next Conv.
    const producer = int8.nodes.find((n) => n.outputs.includes(shuffle[0]!.inputs[0]!));
    expect(producer?.opType).toBe('DequantizeLinear');
    expect(int8.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThanOrEqual(3);
    expect(plan.float).toContainEqual(expect.objectContaining({ opType: 'DepthToSpace', reason: expect.stringMatching(/no definition for: left as exported/) }));
    const [want, got] = [await only(measured, input), await only(int8, input)];
    expect(got.dims).toEqual([2, 10]);
    expect(sqnr(got, want)).toBeGreaterThan(20);
  });

  it('a model with an argmax output (int64, an op slimkit has no definition for): the calibration method is chosen on the float scores (it crashed mixing BigInt)', async () => {
    const g = emptyGraph('argmax', 13);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 3, 32, 32] }];
    g.outputs = [{ name: 'logits', dtype: 'float32', shape: ['N', 10] }, { name: 'pred', dtype: 'int64', shape: ['N'] }];
    const rng = new Random(5);
    const weights = (dims: number[]): Tensor => float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal() * 0.2));
    g.initializers.set('w', weights([8, 3, 3, 3]));
    g.initializers.set('fc', weights([10, 8]));
    g.nodes = [
      { name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['c'], attributes: {} },
      { name: 'relu', opType: 'Relu', domain: '', inputs: ['c'], outputs: ['r'], attributes: {} },
      { name: 'gap', opType: 'GlobalAveragePool', domain: '', inputs: ['r'], outputs: ['p'], attributes: {} },
      { name: 'flat', opType: 'Flatten', domain: '', inputs: ['p'], outputs: ['f'], attributes: {} },
      { name: 'fc', opType: 'Gemm', domain: '', inputs: ['f', 'fc'], outputs: ['logits'], attributes: { transB: { type: 'int', value: 1 } } },
      { name: 'argmax', opType: 'ArgMax', domain: '', inputs: ['logits'], outputs: ['pred'], attributes: { axis: { type: 'int', value: 1 }, keepdims: { type: 'int', value: 0 } } },
    ];
    const pixels = Uint8Array.from({ length: 100 * 3072 }, () => rng.int(256));
    const images = { name: 'made', classes: Array.from({ length: 10 }, (_, i) => `c${i}`), imageShape: [3, 32, 32] as [number, number, number], pixels, labels: Uint16Array.from({ length: 100 }, (_, i) => i % 10) };
    const q = await quantizeModel(g, images, { samples: 32, threads: 1 });
    expect(Object.keys(q.methodScores ?? {}).sort()).toEqual(['entropy', 'minmax', 'mse', 'percentile']);
    expect(Object.values(q.methodScores ?? {}).every(Number.isFinite)).toBe(true);
    expect(q.graph.outputs.map((o) => [o.name, o.dtype])).toEqual([['logits', 'float32'], ['pred', 'int64']]);
    expect(q.graph.nodes.filter((n) => n.opType === 'ArgMax')).toHaveLength(1);
  });

  it('fp16: the op computes in float32 between Casts', async () => {
    const { graph: measured } = await withMeasuredOpaqueTypes(await readModel(PIXEL_SHUFFLE), PIXEL_SHUFFLE);
    const half = convertFloat16(prepareFloatGraph(measured, { equalize: false }).graph, 'full').graph;
    const shuffle = half.nodes.find((n) => n.opType === 'DepthToSpace')!;
    const around = half.nodes.filter((n) => n.opType === 'Cast' && (n.outputs.includes(shuffle.inputs[0]!) || n.inputs.includes(shuffle.outputs[0]!)));
    expect(around.map((n) => n.attributes['to']?.value)).toEqual([1, 10]); // to float32 before, to float16 after
    const [want, got] = [await only(measured, input), await only(half, input)];
    expect(maxAbsDiff(got, want)).toBeLessThan(0.01);
    const weights = convertFloat16(prepareFloatGraph(measured, { equalize: false }).graph, 'weights').graph;
    expect(maxAbsDiff(await only(weights, input), want)).toBeLessThan(0.01);
  });
});
