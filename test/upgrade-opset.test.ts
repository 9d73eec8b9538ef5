import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { dataInputs, emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { validateGraph } from '../src/onnx/validate.js';
import { upgradeOpset, upgradeOpsetPass } from '../src/passes/upgrade-opset.js';
import { runGraph } from '../src/runtime/ort.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, maxAbsDiff, randomInput, torchSidecar } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-upgrade-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node => ({ name, opType, domain: '', inputs, outputs, attributes });
const ints = (value: number[]) => ({ type: 'ints' as const, value });
const int = (value: number) => ({ type: 'int' as const, value });
const float = (value: number) => ({ type: 'float' as const, value });

/** The oracle: ONNX Runtime runs the model at its own opset and the upgraded one on the same input. */
async function expectSameFunction(graph: Graph, x: Tensor): Promise<Graph> {
  const up = upgradeOpset(graph);
  expect(up.opsets['']).toBe(13);
  validateGraph(up);
  const input = dataInputs(graph)[0]!.name;
  const [before, after] = [await runGraph(graph, { [input]: x }), await runGraph(up, { [input]: x })];
  for (const o of graph.outputs) {
    expect(after[o.name]!.dims).toEqual(before[o.name]!.dims);
    expect(maxAbsDiff(after[o.name]!, before[o.name]!)).toBe(0);
  }
  return up;
}

describe('upgradeOpset: models of opsets 7–12 rewritten for opset 13, the same function', () => {
  it('opset 9: Slice, Pad, Clip, Unsqueeze, Squeeze and Dropout attributes become inputs; Softmax over axes 1… stays so', async () => {
    const g = emptyGraph('op9', 9);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['n', 3, 4, 5] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }, { name: 'p', dtype: 'float32' }];
    g.nodes = [
      node('cut', 'Slice', ['x'], ['s'], { starts: ints([1, 0]), ends: ints([3, -1]), axes: ints([2, 3]) }),
      node('pad', 'Pad', ['s'], ['padded'], { pads: ints([0, 0, 1, 2, 0, 0, 0, 1]), value: float(0.5) }),
      node('clip', 'Clip', ['padded'], ['c'], { min: float(-0.25) }),
      node('drop', 'Dropout', ['c'], ['d'], { ratio: float(0.3) }),
      node('unsq', 'Unsqueeze', ['d'], ['u'], { axes: ints([0]) }),
      node('sq', 'Squeeze', ['u'], ['y'], { axes: ints([0]) }),
      // Before 13 this normalizes each sample over all 3·4·5 values at once, not over the 3 channels.
      node('soft', 'Softmax', ['x'], ['p'], { axis: int(1) }),
    ];
    const up = await expectSameFunction(g, randomInput([2, 3, 4, 5]));
    const pad = up.nodes.find((n) => n.opType === 'Pad')!;
    expect(Object.keys(pad.attributes)).toEqual([]);
    expect(Array.from(up.initializers.get(pad.inputs[1]!)!.data as BigInt64Array, Number)).toEqual([0, 0, 1, 2, 0, 0, 0, 1]);
    expect(up.nodes.find((n) => n.opType === 'Clip')!.inputs).toHaveLength(2); // min only: max stays omitted
    expect(up.nodes.map((n) => n.opType)).toEqual(['Slice', 'Pad', 'Clip', 'Dropout', 'Unsqueeze', 'Squeeze', 'Flatten', 'Softmax', 'Shape', 'Reshape']);
  });

  it('opset 11: Split sizes, ReduceSum axes; a Softmax on the last axis keeps one node; LogSoftmax over everything', async () => {
    const g = emptyGraph('op11', 11);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [2, 6] }];
    g.outputs = ['a', 'b', 'r', 'q', 'l'].map((name) => ({ name, dtype: 'float32' as const }));
    g.nodes = [
      node('split', 'Split', ['x'], ['a', 'b'], { axis: int(1), split: ints([2, 4]) }),
      node('sum', 'ReduceSum', ['x'], ['r'], { axes: ints([1]), keepdims: int(0) }),
      node('soft', 'Softmax', ['x'], ['q'], { axis: int(-1) }),
      node('logsoft', 'LogSoftmax', ['x'], ['l'], { axis: int(0) }),
    ];
    const up = await expectSameFunction(g, randomInput([2, 6], 4));
    expect(up.nodes.filter((n) => n.opType === 'Softmax')).toHaveLength(1);
    expect(up.nodes.find((n) => n.opType === 'ReduceSum')!.inputs).toHaveLength(2);
  });

  it('a PyTorch export at opset 9 (torch.onnx before 1.12 by default) equals PyTorch after the upgrade', async () => {
    const file = 'torch-tiny-mobilenet-op9.onnx';
    const graph = await readModel(fixturePath(file));
    expect(graph.opsets['']).toBe(9);
    const torch = torchSidecar(file);
    const up = await expectSameFunction(graph, torch.input);
    expect(maxAbsDiff((await runGraph(up, { input: torch.input }))['logits']!, torch.output)).toBeLessThan(1e-5);
  });

  it('opset 9: a Dropout mask in the input\'s type (bool from 10) is cast back for its readers', async () => {
    const g = emptyGraph('mask', 9);
    g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 4] }];
    g.outputs = [{ name: 'y', dtype: 'float32' }, { name: 'mask', dtype: 'float32' }];
    g.nodes = [node('drop', 'Dropout', ['x'], ['y', 'mask'], { ratio: float(0.2) })];
    const up = upgradeOpset(g);
    expect(up.nodes.map((n) => n.opType)).toEqual(['Dropout', 'Cast']);
    const out = await runGraph(up, { x: randomInput([1, 4]) });
    expect(out['mask']!.dtype).toBe('float32');
  });

  it('leaves opset 13 and later alone, and refuses opsets below 7 with what to do (the pipeline pass lets them through)', () => {
    const g = emptyGraph('new', 17);
    expect(upgradeOpset(g)).toBe(g);
    const old = emptyGraph('old', 6);
    expect(upgradeOpsetPass.run(old)).toBe(old);
    expect(() => upgradeOpset(emptyGraph('old', 6), { file: 'm.onnx' })).toThrow(/m\.onnx: the model uses ONNX opset 6.*re-export the model at opset 13 or later/);
  });

  it('names the node when a rewrite cannot be exact (a Softmax of unknown rank)', () => {
    const g = emptyGraph('rank', 11);
    g.inputs = [{ name: 'x', dtype: 'float32' }];
    g.outputs = [{ name: 'y', dtype: 'float32' }];
    g.nodes = [node('soft', 'Softmax', ['x'], ['y'])];
    expect(() => upgradeOpset(g)).toThrow(/node 'soft' \(Softmax\): cannot be rewritten for opset 13: its input rank is unknown/);
  });
});

describe('slim quantize on an opset-9 export', () => {
  it('quantizes it with per-channel weights at opset 13 (it stopped at "QuantizeLinear needs opset 10")', async () => {
    const calib = path.join(dir, 'calib');
    for (let c = 0; c < 2; c++) {
      mkdirSync(path.join(calib, `c${c}`), { recursive: true });
      for (let i = 0; i < 8; i++) {
        const pixels = Buffer.from(Array.from({ length: 16 * 16 * 3 }, (_, k) => (k * 37 + i * 101 + c * 53) % 256));
        await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(calib, `c${c}`, `${i}.png`));
      }
    }
    const out = path.join(dir, 'q.onnx');
    const run = await runSlim(['quantize', fixturePath('torch-tiny-mobilenet-op9.onnx'), '-o', out, '--calib', calib, '--samples', '16', '--threads', '1', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('is ONNX opset 9: it is converted to opset 13 first');
    const q = await readModel(out);
    expect(q.opsets['']).toBe(13);
    // Per-channel weights: a DequantizeLinear with a vector of scales.
    expect(q.nodes.some((n) => n.opType === 'DequantizeLinear' && (q.initializers.get(n.inputs[1]!)?.dims[0] ?? 1) > 1)).toBe(true);
    const y = (await runGraph(q, { input: randomInput([2, 3, 16, 16]) }))['logits']!;
    expect(y.dims).toEqual([2, 10]);
  }, 120_000);
});
