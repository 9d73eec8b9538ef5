/**
 * Models exported with keep_initializers_as_inputs (torch.onnx's default below opset 9, common in
 * older model-zoo files) list their weights as graph inputs too. Every transform that deletes, slices
 * or retypes a weight must leave a model with the one image input that ONNX Runtime loads.
 * Oracle: ORT itself (the session's inputs, and outputs against the unchanged model).
 */
import { describe, expect, it } from 'vitest';
import { convertFloat16, DEFAULT_STATIC, quantizeDynamic, quantizeStatic } from '../src/compress/quantize/index.js';
import { pruneStructured } from '../src/compress/prune/index.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel, readModel } from '../src/onnx/io.js';
import { openSession } from '../src/runtime/ort.js';
import { fixturePath, randomInput } from './helpers/fixtures.js';

async function weightsAsInputs(): Promise<Graph> {
  const g = await readModel(fixturePath('torch-tiny-resnet.onnx'));
  const declared = [...g.initializers].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.dims] }));
  return { ...g, inputs: [...g.inputs, ...declared] };
}

/** The declared inputs, after ORT has loaded the model and run it on the image alone. */
async function inputsOf(graph: Graph): Promise<string[]> {
  const session = await openSession(encodeModel(graph).model, { threads: 1 });
  try {
    await session.run({ input: randomInput([2, 3, 16, 16], 2) });
  } finally {
    await session.close();
  }
  return graph.inputs.map((i) => i.name);
}

describe('weights declared as inputs', () => {
  it('the fixture really declares them (and ORT runs it as it is)', async () => {
    expect((await inputsOf(await weightsAsInputs())).length).toBeGreaterThan(10);
  });

  it('static int8, dynamic int8, fp16 and structured pruning each leave one image input', async () => {
    const g = await weightsAsInputs();
    const x = randomInput([2, 3, 16, 16], 1);
    const results: [string, Graph][] = [
      ['static', (await quantizeStatic(g, [{ input: x }], DEFAULT_STATIC, { threads: 1 })).graph],
      ['dynamic', quantizeDynamic(g, { perChannel: true, reduceRange: false, exclude: [] }).graph],
      ['fp16', convertFloat16(g, 'full').graph],
      ['fp16-weights', convertFloat16(g, 'weights').graph],
      ['prune', (await pruneStructured(g, { target: { kind: 'ratio', value: 0.5 } })).graph],
    ];
    for (const [what, graph] of results) expect(await inputsOf(graph), what).toEqual(['input']);
  });
});
