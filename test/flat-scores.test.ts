import './helpers/engine-env.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { scoringConvs, withTrainingBatchNorm } from '../src/engine/reinsert-batchnorm.js';
import { dataInputs, type Graph, type Node } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { float32, toNumbers, type Tensor } from '../src/onnx/tensor.js';
import { flattenScores, spatialScoreShape, unflattenScores } from '../src/passes/flat-scores.js';
import { classScoreDims } from '../src/runtime/class-scores.js';
import { runGraph } from '../src/runtime/ort.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, maxAbsDiff, torchSidecar } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-flat-scores-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The torch fixture with a fully convolutional head: global average pool, then its classifier as a
 * 1×1 Conv, scoring [N, 10, 1, 1] (the same function as the Flatten → Gemm it replaces).
 */
async function spatialScores(): Promise<Graph> {
  const g = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
  const flatten = g.nodes.findIndex((n) => n.opType === 'Flatten');
  const gemm = g.nodes.find((n) => n.opType === 'Gemm')!;
  const [w, bias] = [g.initializers.get(gemm.inputs[1]!)!, g.initializers.get(gemm.inputs[2]!)!];
  const pooled = g.nodes[flatten - 1]!.outputs[0]!;
  const initializers = new Map([...g.initializers].filter(([k]) => k !== gemm.inputs[1] && k !== gemm.inputs[2]));
  initializers.set('head.w', float32([w.dims[0]!, w.dims[1]!, 1, 1], toNumbers(w)));
  initializers.set('head.b', float32([bias.dims[0]!], toNumbers(bias)));
  return {
    ...g,
    initializers,
    valueInfo: new Map(),
    nodes: [...g.nodes.slice(0, flatten), { name: 'head', opType: 'Conv', domain: '', inputs: [pooled, 'head.w', 'head.b'], outputs: ['scores'], attributes: { kernel_shape: { type: 'ints', value: [1, 1] } } } as Node],
    outputs: [{ name: 'scores', dtype: 'float32', shape: ['batch', 10, 1, 1] }],
  };
}

describe('class scores shaped [N, classes, 1, 1]', () => {
  it('are class scores ([N, C] and [N, C, 1, …, 1]); a spatial map or a vector is not', () => {
    expect(classScoreDims([4, 10])).toEqual([4, 10]);
    expect(classScoreDims([4, 10, 1, 1])).toEqual([4, 10]);
    expect(classScoreDims([4, 10, 2, 1])).toBeUndefined();
    expect(classScoreDims([10])).toBeUndefined();
  });

  it('flattenScores / unflattenScores: [N, C] for the work, the same values, and the declared output back', async () => {
    const graph = await spatialScores();
    const flat = flattenScores(graph);
    expect(flat.graph.outputs[0]).toEqual({ name: 'scores', dtype: 'float32', shape: ['batch', 10] });
    const torch = torchSidecar('torch-tiny-resnet-folded.onnx');
    const before = (await runGraph(graph, { input: torch.input }))['scores'] as Tensor<'float32'>;
    const flatOut = (await runGraph(flat.graph, { input: torch.input }))['scores'] as Tensor<'float32'>;
    expect(flatOut.dims).toEqual([2, 10]);
    expect(maxAbsDiff(flatOut, torch.output)).toBeLessThan(1e-5);
    const back = unflattenScores(flat.graph, flat.original!);
    expect(back.outputs).toEqual(graph.outputs);
    expect(back.nodes.some((n) => n.opType === 'Flatten' && n.outputs[0] === 'scores')).toBe(false);
    expect(maxAbsDiff((await runGraph(back, { input: torch.input }))['scores']!, before)).toBe(0);
    expect(flattenScores(await readModel(fixturePath('torch-tiny-resnet-folded.onnx'))).original).toBeUndefined();
  });

  it('an output declared without a shape is flattened as inferred; slim info notes the form', async () => {
    const graph = await spatialScores();
    const undeclared = { ...graph, outputs: [{ name: 'scores', dtype: 'float32' as const }] };
    expect(spatialScoreShape(undeclared)).toEqual(['batch', 10, 1, 1]);
    const flat = flattenScores(undeclared);
    expect(flat.graph.outputs[0]).toEqual({ name: 'scores', dtype: 'float32', shape: ['batch', 10] });
    expect(unflattenScores(flat.graph, flat.original!).outputs).toEqual(undeclared.outputs);
    // [N, 10, 2, 2] is a map, not scores.
    expect(spatialScoreShape({ ...graph, outputs: [{ name: 'scores', dtype: 'float32', shape: ['batch', 10, 2, 2] }] })).toBeUndefined();

    const file = path.join(dir, 'undeclared.onnx');
    await writeModel(undeclared, file);
    const info = await runSlim(['info', file, '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect((JSON.parse(info.stdout) as { notes: string[] }).notes.join('\n')).toMatch(/scores \[batch, 10, 1, 1\] \(a fully convolutional head/);
    const plain = await runSlim(['info', fixturePath('torch-tiny-resnet-folded.onnx'), '--json']);
    expect((JSON.parse(plain.stdout) as { notes: string[] }).notes.join('\n')).not.toMatch(/fully convolutional/);
  });

  it('training a BN-folded model puts BN back after every Conv but the one writing the scores', async () => {
    const graph = await spatialScores();
    const convs = graph.nodes.filter((n) => n.opType === 'Conv').length;
    const images = { name: 'noise', classes: ['a', 'b'], imageShape: [3, 16, 16] as [number, number, number], pixels: Uint8Array.from({ length: 16 * 3 * 16 * 16 }, (_, i) => (i * 37) % 256), labels: new Uint16Array(16) };
    // As trained (behind a Flatten) and as written: the head Conv keeps writing the logits themselves.
    for (const model of [graph, flattenScores(graph).graph]) {
      expect([...scoringConvs(model)].map((n) => n.name)).toEqual(['head']);
      const { graph: withBn, inserted } = await withTrainingBatchNorm(model, images, { samples: 16, threads: 1 });
      expect(inserted).toBe(convs - 1);
      const headOut = model.nodes.find((n) => n.name === 'head')!.outputs[0];
      expect(withBn.nodes.find((n) => n.name === 'head')!.outputs[0]).toBe(headOut);
      expect(withBn.nodes.some((n) => n.opType === 'BatchNormalization' && n.inputs[0] === headOut)).toBe(false);
    }
    // SqueezeNet's head (Conv → ReLU → pool) and a final Softmax: the Conv still writes the scores.
    const relu: Graph = { ...graph, nodes: [...graph.nodes.map((n) => (n.name === 'head' ? { ...n, outputs: ['head_out'] } : n)),
      { name: 'relu', opType: 'Relu', domain: '', inputs: ['head_out'], outputs: ['relu_out'], attributes: {} },
      { name: 'softmax', opType: 'Softmax', domain: '', inputs: ['relu_out'], outputs: ['scores'], attributes: {} }] };
    expect([...scoringConvs(relu)].map((n) => n.name)).toEqual(['head']);
    // A Gemm head: no Conv writes the scores.
    const gemmHead = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    expect(scoringConvs(gemmHead).size).toBe(0);
    // A second output of pooled features (an "embedding" export), read off the last Conv through Relu →
    // pool → Flatten: the scores are the first output, so that Conv is no head and gets its BN too.
    const lastConv = gemmHead.nodes.filter((n) => n.opType === 'Conv').at(-1)!;
    const withEmbedding: Graph = {
      ...gemmHead,
      nodes: [...gemmHead.nodes,
        { name: 'emb_relu', opType: 'Relu', domain: '', inputs: [lastConv.outputs[0]!], outputs: ['emb_r'], attributes: {} },
        { name: 'emb_pool', opType: 'GlobalAveragePool', domain: '', inputs: ['emb_r'], outputs: ['emb_p'], attributes: {} },
        { name: 'emb_flat', opType: 'Flatten', domain: '', inputs: ['emb_p'], outputs: ['embedding'], attributes: {} }],
      outputs: [...gemmHead.outputs, { name: 'embedding', dtype: 'float32' }],
    };
    expect(scoringConvs(withEmbedding).size).toBe(0);
    const noise8 = { name: 'noise', classes: ['a', 'b'], imageShape: [3, 16, 16] as [number, number, number], pixels: Uint8Array.from({ length: 8 * 3 * 16 * 16 }, (_, i) => (i * 37) % 256), labels: new Uint16Array(8) };
    const [one, two] = await Promise.all([gemmHead, withEmbedding].map((g) => withTrainingBatchNorm(g, noise8, { samples: 512, threads: 1 })));
    expect(two!.inserted).toBe(one!.inserted);
    expect(two!.inserted).toBe(gemmHead.nodes.filter((n) => n.opType === 'Conv').length);
    // The statistics come from the images there are, and it says how many.
    expect(one!.samples).toBe(8);
  });

  it.skipIf(!nativeAvailable())('slim train, quantize and eval take such a model; what they write keeps [N, 10, 1, 1]', async () => {
    const file = path.join(dir, 'map.onnx');
    await writeModel(await spatialScores(), file);
    const folder = path.join(dir, 'images');
    let seed = 3;
    for (const split of ['train', 'test']) {
      for (let c = 0; c < 10; c++) {
        mkdirSync(path.join(folder, split, `c${c}`), { recursive: true });
        for (let i = 0; i < 3; i++) {
          const pixels = Buffer.from(Array.from({ length: 16 * 16 * 3 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256));
          await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(folder, split, `c${c}`, `${i}.png`));
        }
      }
    }
    const trained = path.join(dir, 'trained.onnx');
    const train = await runSlim(['train', '--model', file, '--data', folder, '--epochs', '1', '--batch', '10', '--threads', '1', '--out', trained, '--json']);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stderr).toMatch(/scores \[N, 10, 1, 1\]: training on \[N, classes\]/);
    const t = JSON.parse(train.stdout) as { test_top1: number; onnxruntime_top1: number };
    expect(t.onnxruntime_top1).toBe(t.test_top1);
    const written = await readModel(trained);
    expect(written.outputs[0]).toMatchObject({ name: 'scores', shape: ['batch', 10, 1, 1] });
    expect(dataInputs(written)[0]!.shape).toEqual(['batch', 3, 16, 16]);

    const int8 = path.join(dir, 'int8.onnx');
    const quantized = await runSlim(['quantize', trained, '-o', int8, '--calib', folder, '--eval', folder, '--samples', '30', '--json']);
    expect(quantized.code, quantized.stderr).toBe(0);
    const q = await readModel(int8);
    expect(q.outputs[0]).toMatchObject({ name: 'scores', shape: ['batch', 10, 1, 1] });
    // The scores stay float: the head Conv writes them (no 8-bit Q/DQ pair on the output).
    expect(q.nodes.find((n) => n.outputs.includes('scores'))!.opType).toBe('Conv');
    const evaluated = await runSlim(['eval', int8, '--data', folder, '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect((JSON.parse(evaluated.stdout) as { top1: number }).top1).toBe((JSON.parse(quantized.stdout) as { top1_after: number }).top1_after);

    // QAT trains behind a Flatten put after quantization; the written int8 model scores as the engine did.
    const qat = path.join(dir, 'qat.onnx');
    const trainedQat = await runSlim(['quantize', trained, '-o', qat, '--qat', '--epochs', '1', '--batch', '10', '--data', folder, '--eval', folder, '--samples', '30', '--json']);
    expect(trainedQat.code, trainedQat.stderr).toBe(0);
    const r = JSON.parse(trainedQat.stdout) as { top1_after: number; qat: { engine_top1: number } };
    expect(Math.abs(r.top1_after - r.qat.engine_top1)).toBeLessThanOrEqual(2 / 30);
    expect((await readModel(qat)).outputs[0]).toMatchObject({ name: 'scores', shape: ['batch', 10, 1, 1] });

    // A recipe's training stage and its QAT too.
    const recipe = path.join(dir, 'r.yaml');
    writeFileSync(recipe, [`name: map`, `data: { dataset: ${folder} }`, `model: { file: ${file}, id: src }`, 'stages:', '  - finetune: { id: ft, from: src, epochs: 1, batch: 10 }', '  - quantize: { id: q, samples: 20, qat: { epochs: 1, batch: 10 } }', ''].join('\n'));
    const run = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'run'), '--threads', '1', '--no-report'], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    // QAT is judged on the written models, both scored by ONNX Runtime on the run's test images (as slim quantize --qat judges it).
    const scores = /int8 top-1 ([\d.]+ %) \(ONNX Runtime, (\d+) test images\); the PTQ model QAT started from: ([\d.]+ %)/.exec(run.stderr);
    expect(scores, run.stderr).not.toBeNull();
    const [qatTop1, ptqTop1] = [parseFloat(scores![1]!), parseFloat(scores![3]!)];
    if (qatTop1 < ptqTop1) expect(run.stderr).toContain(`QAT ended a little below the PTQ model it started from (${scores![1]} against ${scores![3]}:`);
    else expect(run.stderr).not.toMatch(/QAT ended .*below/);
  }, 300_000);
});
