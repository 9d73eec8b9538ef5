import './helpers/engine-env.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quantizationAwareTraining } from '../src/compress/qat/index.js';
import { DEFAULT_STATIC, imageFeeds, quantizeStatic, sampleImages } from '../src/compress/quantize/index.js';
import { EXACT_ON_HOST } from './helpers/int8-host.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION, type ImageSet } from '../src/data/types.js';
import { nativeAvailable } from '../src/engine/native.js';
import { trainModel } from '../src/engine/train.js';
import { cloneGraph, type Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import { float32 } from '../src/onnx/tensor.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';
import { smallCnn } from './helpers/engine-nets.js';
import { CIFAR_DIR } from './helpers/fixtures.js';

/**
 * On CPU, in CI time: a small CNN made hard to quantize on purpose loses several points to PTQ; one
 * epoch of QAT (fixed PTQ scales, and LSQ) wins most of them back — measured with ONNX Runtime on the
 * exported int8 model. The control is the same extra epoch spent fine-tuning in float, then PTQ: the
 * gain must come from training with the quantization, not from training longer.
 */

const available = nativeAvailable();
const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));

/** How much wider than its siblings an outlier channel is. */
const OUTLIER = 128;

/**
 * Outlier channels: channels 0 and 1 of `conv`'s output scaled by K and the matching inputs of `next`
 * by 1/K. ReLU and max pooling commute with a positive scale, so the float function is unchanged, but
 * a per-tensor activation range now spans K× the siblings' values: PTQ leaves them a few levels.
 */
function outlierChannels(g: Graph, conv: string, next: string, k: number): Graph {
  const h = cloneGraph(g);
  const a = h.nodes.find((n) => n.name === conv)!;
  const b = h.nodes.find((n) => n.name === next)!;
  const scaleRows = (name: string, factor: (row: number) => number, axis: 0 | 1): void => {
    const t = h.initializers.get(name)!;
    const data = Float32Array.from(t.data as Float32Array);
    const [d0, d1] = [t.dims[0]!, t.dims[1] ?? 1];
    const inner = data.length / (d0 * d1);
    for (let i = 0; i < data.length; i++) {
      const index = axis === 0 ? Math.floor(i / (d1 * inner)) : Math.floor(i / inner) % d1;
      data[i]! *= factor(index);
    }
    h.initializers.set(name, float32(t.dims, data));
  };
  const outlier = (c: number): boolean => c < 2;
  scaleRows(a.inputs[1]!, (c) => (outlier(c) ? k : 1), 0);
  scaleRows(a.inputs[2]!, (c) => (outlier(c) ? k : 1), 0);
  scaleRows(b.inputs[1]!, (c) => (outlier(c) ? 1 / k : 1), 1);
  return h;
}

async function top1(graph: Graph, set: ImageSet): Promise<number> {
  const session = await openSession(encodeModel(graph).model, { threads: 2 });
  try {
    return (await evaluate(session, set, { normalization: CIFAR10_NORMALIZATION, batchSize: 250 })).top1;
  } finally {
    await session.close();
  }
}

describe.skipIf(!available || !hasCifar)('QAT vs PTQ on a network made hard to quantize', () => {
  it('one epoch of QAT wins back PTQ\'s loss; the same epoch of float fine-tuning does not', async () => {
    const [train, test] = await Promise.all([
      loadCifar10('train', { dataDir: CIFAR_DIR, limit: 10_000 }),
      loadCifar10('test', { dataDir: CIFAR_DIR, limit: 2_000 }),
    ]);
    const data = { train, test };
    const float = await trainModel({ graph: smallCnn({ seed: 1, widths: [16, 32, 64] }), data, epochs: 3, batch: 128, lr: 0.2, threads: 2, seed: 1 });
    const folded = foldBatchNorm(float.graph);
    let hard = folded;
    for (const [conv, next] of [['conv0', 'conv1'], ['conv1', 'conv2'], ['conv2', 'fc']] as const) hard = outlierChannels(hard, conv, next, OUTLIER);
    const fp32 = await top1(folded, test);
    expect(Math.abs((await top1(hard, test)) - fp32)).toBeLessThanOrEqual(0.001);

    const calibration = sampleImages(train, 512, 0);
    const ptqOf = (g: Graph) => quantizeStatic(g, imageFeeds(calibration, { inputName: 'input', normalization: CIFAR10_NORMALIZATION, batchSize: 64 }), { ...DEFAULT_STATIC, ...EXACT_ON_HOST });
    const ptq = await ptqOf(hard);
    const ptqTop1 = await top1(ptq.graph, test);
    // Hard on purpose: PTQ loses several points.
    expect(fp32 - ptqTop1).toBeGreaterThan(0.03);

    // Adam: the outlier channels make plain SGD's effective step K² larger on the weights behind them.
    const recipe = { data, epochs: 1, batch: 128, optimizer: 'adamw', lr: 1e-4, weightDecay: 0, schedule: 'cosine', threads: 2, seed: 0 } as const;
    const tuned = await trainModel({ graph: hard, ...recipe });
    const controlTop1 = await top1((await ptqOf(foldBatchNorm(tuned.graph))).graph, test);

    for (const learnableScales of [false, true]) {
      const qat = await quantizationAwareTraining({ graph: ptq.graph, float: ptq.float, ...recipe, learnableScales });
      const qatTop1 = await top1(qat.graph, test);
      const label = learnableScales ? 'LSQ' : 'fixed scales';
      expect(qatTop1 - ptqTop1, label).toBeGreaterThan(0.02);
      expect(qatTop1 - controlTop1, label).toBeGreaterThan(0.015);
      // The engine's fake-quantized evaluation predicts ONNX Runtime's int8 accuracy.
      expect(Math.abs(qat.testAccuracy - qatTop1), label).toBeLessThan(0.01);
      console.log(`fp32 ${fp32}, PTQ ${ptqTop1}, float fine-tune + PTQ ${controlTop1}, QAT (${label}) ${qatTop1}`);
    }
  }, 600_000);
});
