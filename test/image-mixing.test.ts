/**
 * A dynamically quantized model measures its activation range over the whole batch, so an image's
 * class can depend on the images run with it. Evaluation, the pipeline and serving run such a model one
 * image per run — what a device classifying one image at a time computes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quantizeDynamic } from '../src/compress/quantize/dynamic.js';
import type { ImageSet, Normalization } from '../src/data/types.js';
import { prepareModel } from '../src/deploy/prepare-model.js';
import { nodeReadme } from '../src/deploy/templates.js';
import { encodeModel } from '../src/onnx/io.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { imageMixingNodes, oneImagePerRunNote } from '../src/onnx/image-mixing.js';
import { float32 } from '../src/onnx/tensor.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';
import { openClassifier } from '../src/serve/classifier.js';

const node = (opType: string, inputs: string[], outputs: string[]): Node => ({ name: `${opType}_${outputs[0]}`, opType, domain: '', inputs, outputs, attributes: {} });

/** [N, 3, 2, 2] → channel means → MatMul by the identity: the class is the brightest channel. */
function channelScores(): Graph {
  const g: Graph = {
    ...emptyGraph('channel-scores'),
    inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 2, 2] }],
    outputs: [{ name: 'scores', dtype: 'float32', shape: ['N', 3] }],
    nodes: [node('GlobalAveragePool', ['x'], ['pooled']), node('Flatten', ['pooled'], ['means']), node('MatMul', ['means', 'w'], ['scores'])],
  };
  g.initializers.set('w', float32([3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1]));
  return g;
}

// Image 0 alone: channel means 10.25, 10.5, 10 — class 1 (its own range keeps them apart). Run with
// image 1 (a channel of 255) the range is 0..255, one step per unit: all three round to 10, a tie → class 0.
const PLANES = [
  [[10, 10, 10, 11], [10, 10, 11, 11], [10, 10, 10, 10]],
  [[255, 255, 255, 255], [0, 0, 0, 0], [0, 0, 0, 0]],
];
const SET: ImageSet = {
  name: 'hand-made',
  classes: ['a', 'b', 'c'],
  imageShape: [3, 2, 2],
  pixels: Uint8Array.from(PLANES.flat(2)),
  labels: Uint16Array.from([1, 0]),
};
const RAW: Normalization = { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] };

describe('a model whose result for one image depends on the images run with it', () => {
  const float = channelScores();
  const dynamic = quantizeDynamic(float, { perChannel: true, reduceRange: false, exclude: [] }).graph;

  it('is found by its DynamicQuantizeLinear, and named in the note; a float model is not', () => {
    expect(imageMixingNodes(float)).toEqual([]);
    const mixing = imageMixingNodes(dynamic);
    expect(mixing.map((m) => m.opType)).toEqual(['DynamicQuantizeLinear']);
    expect(oneImagePerRunNote('q.onnx', mixing)).toMatch(/^note: q\.onnx: DynamicQuantizeLinear '.+' measures its quantization range over the whole batch, .* evaluating one image per run/);
    expect(oneImagePerRunNote('f.onnx', [])).toBeUndefined();
  });

  it('batched, image 0 changes class; one image per run it keeps its own, whatever batchSize says', async () => {
    const model = await openSession(encodeModel(dynamic).model, { threads: 1, label: 'dynamic.onnx' });
    try {
      const batched = await evaluate(model, SET, { batchSize: 2, normalization: RAW, keepPredictions: true });
      const alone = await evaluate(model, SET, { batchSize: 1, normalization: RAW, keepPredictions: true });
      const perImage = await evaluate(model, SET, { batchSize: 256, oneImagePerRun: true, normalization: RAW, keepPredictions: true });
      // The oracle: the float model's classes, which one image per run reproduces.
      expect([...alone.predictions!]).toEqual([1, 0]);
      expect([...batched.predictions!]).toEqual([0, 0]);
      expect([...perImage.predictions!]).toEqual([1, 0]);
      expect(perImage.top1).toBe(1);
      expect(batched.top1).toBe(0.5);
    } finally {
      await model.close();
    }
  });

  it('its bundle says so, and its server runs one image per run whatever --max-batch says', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'image-mixing-'));
    const files = { dynamic: path.join(dir, 'dynamic.onnx'), float: path.join(dir, 'float.onnx') };
    writeFileSync(files.dynamic, encodeModel(dynamic).model);
    writeFileSync(files.float, encodeModel(float).model);
    const options = { target: 'linux-x64' as const, imageSize: [2, 2] as [number, number], mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255], labels: ['a', 'b', 'c'] };
    const q = await prepareModel(files.dynamic, options);
    const f = await prepareModel(files.float, options);
    expect(q.config.model.oneImagePerRun).toBe(true);
    expect(f.config.model.oneImagePerRun).toBeUndefined();
    expect(q.notes.join('\n')).toMatch(/DynamicQuantizeLinear .* the bundle's server runs one image per run/);
    const created = { slimkit: 'test', onnxruntime: 'test', sharp: 'test' };
    const readme = (config: typeof q.config): string => nodeReadme({ config: { ...config, target: 'linux-x64', createdBy: created }, serviceName: 'x', port: 8080 });
    expect(readme(q.config)).toMatch(/one image per run: this model's result for\none image depends on the others/);
    expect(readme(f.config)).toMatch(/together in batches of up to 8/);
    for (const [prepared, maxBatch] of [[q, 1], [f, 8]] as const) {
      const classifier = await openClassifier({ config: { ...prepared.config, target: 'linux-x64', createdBy: created }, model: prepared.bytes, maxBatch: 8, threads: 1 });
      expect(classifier.maxBatch).toBe(maxBatch);
      await classifier.close();
    }
  });
});
