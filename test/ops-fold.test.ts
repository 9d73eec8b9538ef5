/**
 * Shape subgraphs in a real PyTorch export: x.view(x.size(0), -1) becomes Shape → Gather → Unsqueeze →
 * Concat → Reshape, and inference must fold it to the symbolic batch instead of giving up.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { float32, int64, type Tensor } from '../src/onnx/tensor.js';

const FIXTURE = 'test/fixtures/torch-tiny-mobilenet.onnx';
const sidecar = JSON.parse(readFileSync('test/fixtures/torch-tiny-mobilenet.json', 'utf8')) as { input_dims: number[]; output_dims: number[] };

describe('shape subgraph folding (torch-tiny-mobilenet)', async () => {
  const graph = await readModel(FIXTURE);
  const reshape = graph.nodes.find((n) => n.opType === 'Reshape')!;
  const shapeValue = reshape.inputs[1]!;

  it('is the subgraph torch.onnx emits for view(x.size(0), -1)', () => {
    const producer = graph.nodes.find((n) => n.outputs.includes(shapeValue));
    expect(producer?.opType).toBe('Concat');
    expect(graph.nodes.map((n) => n.opType)).toEqual(expect.arrayContaining(['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape']));
    expect(graph.inputs[0]?.shape?.[0]).toBe('batch');
  });

  it('folds the Concat to [batch, -1] and gives Reshape [batch, 64]', () => {
    const result = inferShapes(graph);
    expect(result.known.get(shapeValue)?.values).toEqual(['batch', -1]);
    expect(result.types.get(reshape.outputs[0]!)?.shape).toEqual(['batch', 64]);
    expect(result.types.get(graph.outputs[0]!.name)).toEqual({ dtype: 'float32', shape: ['batch', 10] });
  });

  it('with a fixed batch, matches the dims PyTorch produced', () => {
    const inputShapes = { [graph.inputs[0]!.name]: sidecar.input_dims };
    const result = inferShapes(graph, { inputShapes });
    expect(result.known.get(shapeValue)?.values).toEqual([sidecar.input_dims[0], -1]);
    expect(result.types.get(graph.outputs[0]!.name)?.shape).toEqual(sidecar.output_dims);
  });

  it('counts conv and linear MACs per sample (hand-computed)', () => {
    // stem 3→8 s2: 8·8·8 × 3·9; depthwise: 8·8·8 × 9; SE 8→4→8 on 1×1: 4·8 + 8·4;
    // pw 8→12: 12·8·8 × 8; branch 8→4: 4·8·8 × 8; head 64→10: 10 × 64.
    const expected = 512 * 27 + 512 * 9 + 32 + 32 + 768 * 8 + 256 * 8 + 640;
    expect(inferShapes(graph).totalMacs).toBe(expected);
  });
});

describe('every PyTorch fixture infers the output dims PyTorch produced', () => {
  for (const name of ['torch-tiny-resnet', 'torch-tiny-resnet-folded', 'torch-tiny-mobilenet']) {
    it(name, async () => {
      const graph = await readModel(`test/fixtures/${name}.onnx`);
      const dims = JSON.parse(readFileSync(`test/fixtures/${name}.json`, 'utf8')) as { input_dims: number[]; output_dims: number[] };
      const result = inferShapes(graph, { inputShapes: { [graph.inputs[0]!.name]: dims.input_dims } });
      expect(result.types.get(graph.outputs[0]!.name)?.shape).toEqual(dims.output_dims);
      expect(result.totalMacs).toBeGreaterThan(0);
    });
  }
});

describe("torch's expand(n, -1, -1, -1) with a symbolic batch (CoordConv's coordinate planes)", () => {
  it('compares the batch symbol with −1 as false (a dim is never negative): the target folds to [batch, 1, 1, 1]', () => {
    const node = (opType: string, inputs: string[], output: string, attributes: Node['attributes'] = {}): Node => ({ name: output, opType, domain: '', inputs, outputs: [output], attributes });
    const graph: Graph = {
      ...emptyGraph('coord', 13),
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3, 4, 4] }],
      outputs: [{ name: 'planes', dtype: 'float32' }],
      initializers: new Map<string, Tensor>([
        ['coords', float32([1, 2, 4, 4], new Float32Array(32))],
        ['zero', int64([], [0])],
        ['axes', int64([1], [0])],
        ['rest', int64([3], [-1, -1, -1])],
        ['minus', int64([4], [-1, -1, -1, -1])],
        ['ones', int64([4], [1, 1, 1, 1])],
      ]),
      nodes: [
        node('Shape', ['x'], 'shape'),
        node('Gather', ['shape', 'zero'], 'n'),
        node('Unsqueeze', ['n', 'axes'], 'n1'),
        node('Concat', ['n1', 'rest'], 'target', { axis: { type: 'int', value: 0 } }),
        node('Equal', ['target', 'minus'], 'keep'),
        node('Where', ['keep', 'ones', 'target'], 'picked'),
        node('Expand', ['coords', 'picked'], 'planes'),
      ],
    };
    const result = inferShapes(graph);
    expect(result.known.get('keep')?.values).toEqual([0, 1, 1, 1]);
    expect(result.known.get('picked')?.values).toEqual(['batch', 1, 1, 1]);
    expect(result.types.get('planes')?.shape).toEqual(['batch', 2, 4, 4]);
  });
});
