import { writeModel } from '../../src/onnx/io.js';
import type { Graph } from '../../src/onnx/graph.js';
import { GraphBuilder } from '../../src/zoo/builder.js';

/**
 * Small CNNs for the data-parallel tests, written as ONNX files so the tests drive `slim train`
 * exactly as a user would. Both train a few steps in seconds on two cores.
 */

/** conv-ReLU-pool ×2, global pool, linear head: no BatchNorm, so 1 and N ranks must agree to rounding. */
export function plainCnn(seed = 3): Graph {
  const b = new GraphBuilder({ name: 'ddp-plain', inputShape: [3, 32, 32] });
  let x = b.input;
  [8, 16].forEach((channels, i) => {
    x = b.relu(b.conv(x, { name: `conv${i}`, outChannels: channels, kernel: 3, bias: true }), `relu${i}`);
    x = b.maxPool(x, { name: `pool${i}`, kernel: 2 });
  });
  x = b.flatten(b.globalAvgPool(x, 'gap'), 'flatten');
  return b.build(b.gemm(x, { name: 'fc', outFeatures: 10, output: 'logits' }), { seed });
}

/** The same with BatchNorm after each conv: equal across rank counts only with SyncBatchNorm. */
export function bnCnn(seed = 3): Graph {
  const b = new GraphBuilder({ name: 'ddp-bn', inputShape: [3, 32, 32] });
  let x = b.input;
  [8, 16].forEach((channels, i) => {
    x = b.conv(x, { name: `conv${i}`, outChannels: channels, kernel: 3 });
    x = b.relu(b.batchNorm(x, { name: `bn${i}` }), `relu${i}`);
    x = b.maxPool(x, { name: `pool${i}`, kernel: 2 });
  });
  x = b.flatten(b.globalAvgPool(x, 'gap'), 'flatten');
  return b.build(b.gemm(x, { name: 'fc', outFeatures: 10, output: 'logits' }), { seed });
}

export async function writeNet(graph: Graph, file: string): Promise<string> {
  await writeModel(graph, file);
  return file;
}
