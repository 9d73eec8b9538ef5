import './helpers/engine-env.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { dataInputs, emptyGraph, type Graph } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import { float32, int64, type Tensor } from '../src/onnx/tensor.js';
import { anyBatch, fixBatch } from '../src/passes/any-batch.js';
import { runGraph } from '../src/runtime/ort.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, maxAbsDiff, randomInput, torchSidecar } from './helpers/fixtures.js';

// torch.onnx exports without dynamic_axes: TinyMobileNet for batch 2 (its `x.view(x.size(0), -1)`
// stored as Reshape [2, -1]), TinyShuffleNet for batch 1 (8 stored Reshape targets in its shuffles),
// TinySENet for batch 1.
const STATIC = [
  { file: 'torch-tiny-mobilenet-static.onnx', batch: 2, reshapes: 1 },
  { file: 'torch-tiny-shufflenet-static.onnx', batch: 1, reshapes: 8 },
  // Squeeze-excitation: its expand_as reads the freed batch through Shape.
  { file: 'torch-tiny-senet-static.onnx', batch: 1, reshapes: 5 },
];

const dir = mkdtempSync(path.join(tmpdir(), 'slim-any-batch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rows [from, from + count) of a batch tensor. */
function rows(t: Tensor<'float32'>, from: number, count: number): Tensor<'float32'> {
  const per = t.data.length / t.dims[0]!;
  return float32([count, ...t.dims.slice(1)], t.data.subarray(from * per, (from + count) * per));
}

describe('anyBatch: a model exported for one batch size runs on any', () => {
  it.each(STATIC)('$file: batches of 7 samples equal the exported model run on its own batch size', async ({ file, batch, reshapes }) => {
    const graph = await readModel(fixturePath(file));
    const input = dataInputs(graph)[0]!;
    expect(input.shape![0]).toBe(batch);
    const freed = anyBatch(graph);
    expect(freed.fixedBatch).toBe(batch);
    expect(freed.reshapes).toHaveLength(reshapes);
    expect(dataInputs(freed.graph)[0]!.shape![0]).toBe('batch');

    // The oracle: the unchanged export, fed the same samples `batch` at a time.
    const samples = batch * 7;
    const x = randomInput([samples, ...(input.shape!.slice(1) as number[])], 3);
    const all = (await runGraph(freed.graph, { [input.name]: x }))[graph.outputs[0]!.name]! as Tensor<'float32'>;
    expect(all.dims[0]).toBe(samples);
    for (let from = 0; from < samples; from += batch) {
      const alone = (await runGraph(graph, { [input.name]: rows(x, from, batch) }))[graph.outputs[0]!.name]! as Tensor<'float32'>;
      expect(maxAbsDiff(rows(all, from, batch), alone)).toBe(0);
    }
    // And PyTorch's own output for the exported batch.
    const torch = torchSidecar(file);
    const out = (await runGraph(freed.graph, { [input.name]: torch.input }))[graph.outputs[0]!.name]!;
    expect(maxAbsDiff(out, torch.output)).toBeLessThan(1e-5);
  });

  it('fixBatch gives the written model the inputs and outputs of the export back', async () => {
    const graph = await readModel(fixturePath('torch-tiny-mobilenet-static.onnx'));
    const freed = anyBatch(graph);
    const back = fixBatch(freed.graph, 2, freed.freed);
    expect(back.inputs.map((v) => v.shape)).toEqual(graph.inputs.map((v) => v.shape));
    expect(back.outputs.map((v) => v.shape)).toEqual(graph.outputs.map((v) => v.shape));
  });

  /** x [N, 3] · scale [3] → y [N, 3]. */
  function scaled(x: Graph['inputs'][number]['shape']): Graph {
    const g = emptyGraph('two-inputs', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: x! }, { name: 'scale', dtype: 'float32', shape: [3] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [x![0]!, 3] }];
    g.nodes = [{ name: 'mul', opType: 'Mul', domain: '', inputs: ['x', 'scale'], outputs: ['y'], attributes: {} }];
    return g;
  }

  it('frees and restores only the batch of the inputs and outputs that have it (a second input keeps its shape)', async () => {
    const freed = anyBatch(scaled([1, 3]));
    expect(freed.freed).toEqual({ inputs: ['x'], outputs: ['y'], symbol: 'batch' });
    expect(freed.graph.inputs.map((v) => v.shape)).toEqual([['batch', 3], [3]]);
    const y = (await runGraph(freed.graph, { x: float32([2, 3], [1, 2, 3, 4, 5, 6]), scale: float32([3], [1, 10, 100]) }))['y']!;
    expect(Array.from(y.data as Float32Array)).toEqual([1, 20, 300, 4, 50, 600]);
    const back = fixBatch(freed.graph, 1, freed.freed);
    expect(back.inputs.map((v) => v.shape)).toEqual([[1, 3], [3]]);
    // A free batch on the image input: nothing to free, whatever the other inputs hold.
    const free = scaled(['n', 3]);
    expect(anyBatch(free).graph).toBe(free);
  });

  it('leaves inputs whose first axis need not be a batch (rank 3: C×H×W) alone', () => {
    const g = emptyGraph('chw', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [3, 8, 8] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [3, 8, 8] }];
    g.nodes = [{ name: 'act', opType: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attributes: {} }];
    expect(anyBatch(g).graph).toBe(g);
  });

  it('leaves a model with a free batch as it is', async () => {
    const graph = await readModel(fixturePath('torch-tiny-mobilenet.onnx'));
    const r = anyBatch(graph);
    expect(r.graph).toBe(graph);
    expect(r.fixedBatch).toBeUndefined();
  });

  /** x [1, 4] → Reshape(target) → Relu → y. */
  function reshapeModel(target: number[], allowZero?: number): Graph {
    const g = emptyGraph('reshape', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 4] }];
    g.initializers.set('target', int64([target.length], target));
    g.nodes = [
      { name: 'view', opType: 'Reshape', domain: '', inputs: ['x', 'target'], outputs: ['r'], attributes: allowZero === undefined ? {} : { allowzero: { type: 'int', value: allowZero } } },
      { name: 'act', opType: 'Relu', domain: '', inputs: ['r'], outputs: ['y'], attributes: {} },
    ];
    return g;
  }

  it('copies the batch under allowzero with -1, and refuses when the target has its -1 already', async () => {
    const freed = anyBatch(reshapeModel([1, 4], 1));
    expect(freed.reshapes).toEqual(['view']);
    const x = float32([3, 4], [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12]);
    const y = (await runGraph(freed.graph, { x }))['y']!;
    expect(y.dims).toEqual([3, 4]);
    expect(Array.from(y.data as Float32Array)).toEqual([1, 0, 3, 0, 5, 0, 7, 0, 9, 0, 11, 0]);
    expect(() => anyBatch(reshapeModel([1, -1], 1), { file: 'm.onnx' })).toThrow(/m\.onnx: node 'view' \(Reshape\): the model takes 1 sample\(s\) at a time, and this node keeps its first axis at that size.*dynamic_axes/);
  });

  it('names the node that pins the batch when it is not a stored Reshape', () => {
    const g = emptyGraph('slice', 17);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 4] }];
    for (const [name, v] of [['starts', 0], ['ends', 1], ['axes', 0]] as const) g.initializers.set(name, int64([1], [v]));
    g.nodes = [{ name: 'first_row', opType: 'Slice', domain: '', inputs: ['x', 'starts', 'ends', 'axes'], outputs: ['y'], attributes: {} }];
    expect(() => anyBatch(g)).toThrow(/node 'first_row' \(Slice\): the model takes 1 sample\(s\) at a time/);
  });
});

/** A folder of `classes` classes with `each` random 16×16 images. */
async function imageFolder(root: string, classes: number, each: number): Promise<string> {
  let seed = 1;
  for (let c = 0; c < classes; c++) {
    mkdirSync(path.join(root, `c${c}`), { recursive: true });
    for (let i = 0; i < each; i++) {
      const pixels = Buffer.from(Array.from({ length: 16 * 16 * 3 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256));
      await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(root, `c${c}`, `${i}.png`));
    }
  }
  return root;
}

describe('commands that feed batches take a fixed-batch export and write its batch back', () => {
  const model = fixturePath('torch-tiny-mobilenet-static.onnx');

  it('slim quantize calibrates in batches and writes a batch-2 model ONNX Runtime runs', async () => {
    const folder = await imageFolder(path.join(dir, 'calib'), 10, 4);
    const out = path.join(dir, 'q.onnx');
    const run = await runSlim(['quantize', model, '-o', out, '--calib', folder, '--samples', '40', '--json', '--threads', '1']);
    expect(run.stderr).toContain('was exported for a batch of 2 only: working on batches of any size (1 stored Reshape target(s) now copy the batch)');
    expect(run.code).toBe(0);
    const written = await readModel(out);
    expect(dataInputs(written)[0]!.shape).toEqual([2, 3, 16, 16]);
    expect(written.outputs[0]!.shape).toEqual([2, 10]);
    const y = (await runGraph(written, { input: randomInput([2, 3, 16, 16]) }))['logits']!;
    expect(y.dims).toEqual([2, 10]);
  }, 120_000);

  it('slim bench measures each at the batch it takes (batch 32 was refused)', async () => {
    const shuffle = fixturePath('torch-tiny-shufflenet-static.onnx');
    const run = await runSlim(['bench', shuffle, model, '--runs', '50', '--warmup', '2', '--threads', '1', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const rows = (JSON.parse(run.stdout) as { models: { latency_batch: number; throughput_batch: number; throughput_ips: number }[] }).models;
    expect(rows.map((r) => [r.latency_batch, r.throughput_batch])).toEqual([[1, 1], [2, 2]]);
    expect(rows.every((r) => r.throughput_ips > 0)).toBe(true);
    expect(run.stderr).toContain('torch-tiny-mobilenet-static.onnx takes batches of 2 only: its latency is that of a batch of 2');
  }, 120_000);

  it.skipIf(!nativeAvailable())('slim train trains it in batches of 8', async () => {
    const folder = path.join(dir, 'split');
    await imageFolder(path.join(folder, 'train'), 10, 4);
    await imageFolder(path.join(folder, 'test'), 10, 1);
    const out = path.join(dir, 't.onnx');
    const run = await runSlim(['train', '--model', model, '--data', folder, '--epochs', '1', '--batch', '8', '--threads', '1', '--out', out, '--json']);
    expect(run.stderr).toContain('was exported for a batch of 2 only');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).steps).toBe(5);
    const written = await readModel(out);
    expect(dataInputs(written)[0]!.shape).toEqual([2, 3, 16, 16]);
    // It recorded no mean/std and trained with CIFAR-10's: the written model records them (eval and deploy read them).
    expect([written.metadata['slimkit.mean'], written.metadata['slimkit.std']]).toEqual(['[0.4914,0.4822,0.4465]', '[0.247,0.2435,0.2616]']);
  }, 120_000);

  it('slim run: a recipe whose model file takes one batch size quantizes and fine-tunes it', async () => {
    const images = path.join(dir, 'recipe-images');
    await imageFolder(path.join(images, 'train'), 10, 4);
    await imageFolder(path.join(images, 'test'), 10, 1);
    const recipe = path.join(dir, 'static.yaml');
    const stages = ['  - quantize: { id: q, samples: 32 }', ...(nativeAvailable() ? ['  - finetune: { id: ft, from: src, epochs: 1, batch: 8 }'] : [])];
    writeFileSync(recipe, [`name: static`, `data: { dataset: ${images} }`, `model: { file: ${model}, id: src }`, 'stages:', ...stages, ''].join('\n'));
    const run = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'run'), '--threads', '1', '--no-report', '--json'], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("'src' was exported for a batch of 2 only");
    expect((JSON.parse(run.stdout) as { ran: string[] }).ran).toEqual(nativeAvailable() ? ['q', 'ft'] : ['q']);
    expect(dataInputs(await readModel(path.join(dir, 'run', 'models', 'q.onnx')))[0]!.shape![0]).toBe('batch');
  }, 240_000);
});
