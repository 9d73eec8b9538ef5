/**
 * src/runtime/ort.ts against PyTorch: the fixtures' .json sidecars hold a fixed input and PyTorch's
 * output for it (scripts/make-torch-fixtures.py). Plus the error messages a user sees on bad feeds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { float32, int64, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { openSession, ortVersion, runGraph } from '../src/runtime/ort.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = (name: string): string => path.join(REPO, 'test/fixtures', name);

interface Sidecar {
  input_dims: number[];
  input: number[];
  output_dims: number[];
  output: number[];
}

function sidecar(name: string): Sidecar {
  return JSON.parse(readFileSync(fixture(name.replace('.onnx', '.json')), 'utf8')) as Sidecar;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function errorOf(p: Promise<unknown>): Promise<SlimError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(SlimError);
  return e as SlimError;
}

function node(opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node {
  return { name: `${opType}_${outputs[0]}`, opType, domain: '', inputs, outputs, attributes };
}

describe('openSession on PyTorch-exported fixtures', () => {
  for (const name of ['torch-tiny-resnet.onnx', 'torch-tiny-resnet-folded.onnx', 'torch-tiny-mobilenet.onnx']) {
    it(`${name}: output equals PyTorch's within 1e-4`, async () => {
      const ref = sidecar(name);
      const model = await openSession(fixture(name), { threads: 1 });
      try {
        expect(model.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: ['batch', 3, 16, 16] }]);
        expect(model.outputs).toEqual([{ name: 'logits', dtype: 'float32', dims: ['batch', 10] }]);
        const out = await model.run({ input: float32(ref.input_dims, ref.input) });
        expect(Object.keys(out)).toEqual(['logits']);
        expect(out.logits!.dtype).toBe('float32');
        expect(out.logits!.dims).toEqual(ref.output_dims);
        expect(maxAbsDiff(out.logits!.data as Float32Array, ref.output)).toBeLessThanOrEqual(1e-4);
      } finally {
        await model.close();
      }
    });
  }

  it('opens from bytes with every optimization level and gets the same output', async () => {
    const ref = sidecar('torch-tiny-resnet.onnx');
    const bytes = readFileSync(fixture('torch-tiny-resnet.onnx'));
    for (const optimization of ['disabled', 'basic', 'extended', 'all'] as const) {
      const model = await openSession(bytes, { threads: 2, optimization, label: 'tiny.onnx' });
      const out = await model.run({ input: float32(ref.input_dims, ref.input) }, { outputs: ['logits'] });
      await model.close();
      expect(maxAbsDiff(out.logits!.data as Float32Array, ref.output)).toBeLessThanOrEqual(1e-4);
    }
  });
});

describe('feed errors name the model, the feeds and what the model expects', () => {
  const file = fixture('torch-tiny-resnet.onnx');

  it('wrong image size', async () => {
    const model = await openSession(file, { threads: 1 });
    const e = await errorOf(model.run({ input: makeTensor('float32', [2, 3, 32, 32]) }));
    await model.close();
    expect(e.kind).toBe('input');
    expect(e.message).toContain(file);
    expect(e.message).toContain("input 'input' has dims [2, 3, 32, 32] but the model expects [batch, 3, 16, 16]");
    expect(e.message).toContain('feeds input float32[2, 3, 32, 32]');
  });

  it('wrong rank, wrong dtype, unknown and missing names', async () => {
    const model = await openSession(file, { threads: 1 });
    const rank = await errorOf(model.run({ input: makeTensor('float32', [3, 16, 16]) }));
    expect(rank.message).toContain('has dims [3, 16, 16] but the model expects [batch, 3, 16, 16]');
    const dtype = await errorOf(model.run({ input: makeTensor('int32', [1, 3, 16, 16]) }));
    expect(dtype.message).toContain("input 'input' is int32 but the model expects float32");
    const unknown = await errorOf(model.run({ input: makeTensor('float32', [1, 3, 16, 16]), image: makeTensor('float32', [1]) }));
    expect(unknown.message).toContain("the model has no input 'image'");
    expect(unknown.message).toContain('the model expects input float32[batch, 3, 16, 16]');
    const missing = await errorOf(model.run({}));
    expect(missing.message).toContain("input 'input' is not fed");
    expect(missing.message).toContain('feeds (none)');
    await model.close();
  });

  it('a failure inside ORT is a SlimError with ORT’s reason and the feeds', async () => {
    const graph: Graph = {
      ...emptyGraph('reshape'),
      inputs: [{ name: 'x', dtype: 'float32', shape: ['n'] }, { name: 'shape', dtype: 'int64', shape: [2] }],
      outputs: [{ name: 'y', dtype: 'float32' }],
      nodes: [node('Reshape', ['x', 'shape'], ['y'])],
    };
    const e = await errorOf(runGraph(graph, { x: float32([6], [1, 2, 3, 4, 5, 6]), shape: int64([2], [4, 4]) }, { threads: 1 }));
    expect(e.message).toContain("graph 'reshape'");
    expect(e.message).toContain('ONNX Runtime failed:');
    expect(e.message).toContain('feeds x float32[6], shape int64[2]');
    expect(e.message).toContain('the model expects x float32[n], shape int64[2]');
  });

  it('missing file, damaged bytes, bad thread count', async () => {
    const missing = await errorOf(openSession('/nonexistent/model.onnx'));
    expect(missing.message).toBe('/nonexistent/model.onnx: file not found — check the path to the .onnx model');
    const damaged = await errorOf(openSession(new Uint8Array([1, 2, 3, 4, 5]), { label: 'junk.onnx' }));
    expect(damaged.message).toMatch(/^junk\.onnx: ONNX Runtime cannot load the model: /);
    const threads = await errorOf(openSession(file, { threads: 0 }));
    expect(threads.kind).toBe('usage');
  });
});

describe('runGraph', () => {
  it('runs a hand-built graph: Relu then a broadcast Add with an initializer', async () => {
    const graph: Graph = {
      ...emptyGraph('relu-add'),
      inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [2, 3] }],
      nodes: [node('Relu', ['x'], ['r']), node('Add', ['r', 'b'], ['y'])],
      initializers: new Map<string, Tensor>([['b', float32([3], [10, 20, 30])]]),
    };
    const out = await runGraph(graph, { x: float32([2, 3], [-1, 2, -3, 4, -5, 6]) });
    expect(out.y!.dims).toEqual([2, 3]);
    expect([...(out.y!.data as Float32Array)]).toEqual([10, 22, 30, 14, 20, 36]);
  });

  it('passes int64 and uint8 through unchanged', async () => {
    const graph: Graph = {
      ...emptyGraph('identity'),
      inputs: [{ name: 'a', dtype: 'int64', shape: [3] }, { name: 'b', dtype: 'uint8', shape: [2] }],
      outputs: [{ name: 'a2', dtype: 'int64' }, { name: 'b2', dtype: 'uint8' }],
      nodes: [node('Identity', ['a'], ['a2']), node('Identity', ['b'], ['b2'])],
    };
    const out = await runGraph(graph, { a: int64([3], [-5, 0, 2 ** 40]), b: makeTensor('uint8', [2], new Uint8Array([0, 255])) }, { outputs: ['a2', 'b2'] });
    expect(out.a2!.dtype).toBe('int64');
    expect([...(out.a2!.data as BigInt64Array)]).toEqual([-5n, 0n, 2n ** 40n]);
    expect(out.b2!.dtype).toBe('uint8');
    expect([...(out.b2!.data as Uint8Array)]).toEqual([0, 255]);
  });
});

it('ortVersion reports the installed onnxruntime-node', () => {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string };
  expect(ortVersion().node).toBe(pkg.version);
  expect(ortVersion().common).toMatch(/^\d+\.\d+\.\d+/);
});
