import { describe, expect, it } from 'vitest';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { makeTensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { GraphBuilder } from '../src/zoo/builder.js';
import { countParameters } from '../src/zoo/params.js';

function tiny(): { b: GraphBuilder; out: ReturnType<GraphBuilder['gemm']> } {
  const b = new GraphBuilder({ name: 'tiny', inputShape: [2, 4, 4] });
  let x = b.conv(b.input, { name: 'conv1', outChannels: 3, kernel: 3, stride: 2 });
  x = b.relu(b.batchNorm(x, { name: 'bn1' }), 'relu');
  const y = b.conv(x, { name: 'conv2', outChannels: 3, kernel: 1, bias: true });
  x = b.relu(b.add(x, y, 'add'), 'relu');
  x = b.flatten(b.globalAvgPool(b.maxPool(x, { name: 'pool', kernel: 2 }), 'avgpool'), 'flatten');
  return { b, out: b.gemm(x, { name: 'fc', outFeatures: 2, output: 'logits' }) };
}

describe('GraphBuilder', () => {
  it('names weights like a state dict and keeps node names unique', () => {
    const { b, out } = tiny();
    const g = b.build(out, { seed: 0, metadata: { k: 'v' } });
    expect([...g.initializers.keys()]).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var',
      'conv2.weight', 'conv2.bias', 'fc.weight', 'fc.bias',
    ]);
    expect(g.nodes.map((n) => n.name)).toEqual(['conv1', 'bn1', 'relu', 'conv2', 'add', 'relu_1', 'pool', 'avgpool', 'flatten', 'fc']);
    expect(g.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 2, 4, 4] }]);
    expect(g.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['batch', 2] }]);
    expect(g.metadata).toEqual({ k: 'v' });
    expect(g.nodes.find((n) => n.name === 'conv1')!.attributes.pads).toEqual({ type: 'ints', value: [1, 1, 1, 1] });
  });

  it('counts parameters without building: running stats excluded', () => {
    const { b, out } = tiny();
    // conv1 3·2·9 + bn γβ 3+3 + conv2 3·3 + 3 + fc 2·3 + 2
    const expected = 54 + 6 + 12 + 8;
    expect(b.parameterCount()).toBe(expected);
    expect(countParameters(b.build(out, { seed: 1 }))).toBe(expected);
  });

  it('builds a graph that infers and runs; zero weights give the Gemm bias', async () => {
    const { b, out } = tiny();
    const g = b.build(out, { seed: 0 });
    expect(inferShapes(g).types.get('logits')).toEqual({ dtype: 'float32', shape: ['batch', 2] });
    // With fc.weight zeroed the logits are exactly fc.bias for every image: a hand-checkable run.
    const zeroed = { ...g, initializers: new Map(g.initializers).set('fc.weight', makeTensor('float32', [2, 3])) };
    const input = makeTensor('float32', [3, 2, 4, 4], Float32Array.from({ length: 96 }, (_, i) => Math.sin(i)));
    const logits = (await runGraph(zeroed, { input }, { threads: 1 })).logits!;
    const bias = [...(g.initializers.get('fc.bias')!.data as Float32Array)];
    expect(logits.dims).toEqual([3, 2]);
    expect([...(logits.data as Float32Array)]).toEqual([...bias, ...bias, ...bias]);
  });

  it('rejects adding values with different channel counts', () => {
    const b = new GraphBuilder({ name: 't', inputShape: [3, 8, 8] });
    const a = b.conv(b.input, { name: 'a', outChannels: 4, kernel: 1 });
    expect(() => b.add(a, b.input, 'add')).toThrow(/a has 4 channels but input has 3/);
  });
});
