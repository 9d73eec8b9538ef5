import type { Graph } from '../../src/onnx/graph.js';
import { GraphBuilder } from '../../src/zoo/builder.js';

/**
 * A small CNN for engine tests that must train in seconds on two cores: three conv-BN-ReLU stages
 * with max pooling, global average pool and a linear head (CIFAR-sized input).
 */
export function smallCnn(options: { seed?: number; widths?: [number, number, number]; classes?: number } = {}): Graph {
  const [c1, c2, c3] = options.widths ?? [16, 32, 64];
  const b = new GraphBuilder({ name: 'small-cnn', inputShape: [3, 32, 32] });
  let x = b.input;
  [c1, c2, c3].forEach((channels, i) => {
    x = b.conv(x, { name: `conv${i}`, outChannels: channels, kernel: 3 });
    x = b.relu(b.batchNorm(x, { name: `bn${i}` }), `relu${i}`);
    if (i < 2) x = b.maxPool(x, { name: `pool${i}`, kernel: 2 });
  });
  x = b.flatten(b.globalAvgPool(x, 'gap'), 'flatten');
  const logits = b.gemm(x, { name: 'fc', outFeatures: options.classes ?? 10, output: 'logits' });
  return b.build(logits, { seed: options.seed ?? 0 });
}
