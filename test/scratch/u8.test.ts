import { it } from 'vitest';
import { DEFAULT_STATIC, quantizeStatic, ortKernels } from '../../src/compress/quantize/index.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { float32, makeTensor } from '../../src/onnx/tensor.js';
import { cloneGraph, GraphIndex, type Graph } from '../../src/onnx/graph.js';
import { encodeModel } from '../../src/onnx/io.js';
import { Random } from '../../src/util/random.js';
import { runGraph } from '../../src/runtime/ort.js';
import { exactInt8Output } from '../helpers/int8-host.js';

function toU8(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const index = new GraphIndex(g);
  for (const n of g.nodes) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') continue;
    const dq = index.producer.get(n.inputs[1]!);
    if (dq?.opType !== 'DequantizeLinear') continue;
    const q = g.initializers.get(dq.inputs[0]!)!;
    const zp = g.initializers.get(dq.inputs[2]!)!;
    g.initializers.set(dq.inputs[0]!, makeTensor('uint8', q.dims, Uint8Array.from(q.data as Int8Array, (v) => v + 128)));
    g.initializers.set(dq.inputs[2]!, makeTensor('uint8', zp.dims, Uint8Array.from(zp.data as Int8Array, (v) => v + 128)));
  }
  return g;
}
it('u8u8', async () => {
  const rng = new Random(3);
  const x = float32([8, 3, 32, 32], Array.from({ length: 8 * 3072 }, () => rng.normal()));
  const { graph } = await quantizeStatic(buildZooModel('resnet18-cifar', { width: 0.5 }), [{ input: x }], { ...DEFAULT_STATIC, cpu: 'generic' }, { threads: 1 });
  const u8 = toU8(graph);
  console.log((await ortKernels(encodeModel(u8).model)).ops);
  const exact = await exactInt8Output(graph, { input: x });
  const node = Array.from(Object.values(await runGraph(graph, { input: x }, { threads: 1 }))[0]!.data as Float32Array);
  const nodeU8 = Array.from(Object.values(await runGraph(u8, { input: x }, { threads: 1 }))[0]!.data as Float32Array);
  const diff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
  console.log('s8 node vs exact', diff(node, exact), 'u8 node vs exact', diff(nodeU8, exact));
  for (const [name, g] of [['s8', graph], ['u8', u8]] as const) {
    const t = performance.now();
    for (let i = 0; i < 20; i++) await runGraph(g, { input: x }, { threads: 1 });
    console.log(name, ((performance.now() - t) / 20).toFixed(1), 'ms');
  }
}, 300_000);
