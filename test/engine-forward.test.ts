import './helpers/engine-env.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import { dataInputs, type Graph } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import { float32, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';
import { pruneStructured } from '../src/compress/prune/index.js';

/**
 * The permanent cross-check of ARCHITECTURE.md: for any Graph, the engine's eval-mode forward equals
 * ONNX Runtime's (≤ 1e-4), and on PyTorch-exported fixtures it equals PyTorch's own output.
 */

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

function randomInput(dims: number[], seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal()));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]! - b[k]!));
  return m;
}

async function engineVsOrt(graph: Graph, x: Tensor<'float32'>): Promise<{ ours: Tensor<'float32'>; diff: number }> {
  const ours = EnginePlan.create(graph, { threads: 2 }).forward(x)[0]!;
  const ort = await runGraph(graph, { [dataInputs(graph)[0]!.name]: x });
  const ref = ort[graph.outputs[0]!.name]!;
  expect(ours.dims).toEqual(ref.dims);
  return { ours, diff: maxAbsDiff(ours.data, ref.data as Float32Array) };
}

describe.skipIf(!nativeAvailable())('engine eval forward', () => {
  const zoo: [string, Parameters<typeof buildZooModel>[1], number[]][] = [
    ['resnet18-cifar', { width: 0.25, seed: 3 }, [3, 3, 32, 32]],
    ['resnet50-cifar', { width: 0.125, seed: 4 }, [2, 3, 32, 32]],
    ['resnet18-imagenet', { width: 0.125, seed: 5, classes: 7 }, [1, 3, 224, 224]],
  ];
  for (const [name, options, dims] of zoo) {
    it(`${name} equals ONNX Runtime`, async () => {
      const graph = buildZooModel(name, options);
      // Random BN statistics, so eval-mode normalization is exercised, not the identity it starts as.
      const rng = new Random(9);
      for (const [key, t] of graph.initializers) {
        if (key.endsWith('running_var')) graph.initializers.set(key, float32(t.dims, Array.from(t.data as Float32Array, () => 0.5 + rng.next())));
        if (key.endsWith('running_mean')) graph.initializers.set(key, float32(t.dims, Array.from(t.data as Float32Array, () => 0.2 * rng.normal())));
      }
      const { diff } = await engineVsOrt(graph, randomInput(dims, 11));
      expect(diff).toBeLessThanOrEqual(1e-4);
    });
  }

  // torch-tiny-senet: squeeze-excitation's view(b, c) and expand_as, computed from Shape at run time;
  // torch-tiny-gnnet: GroupNorm (Reshape → InstanceNormalization → Reshape → Mul → Add); torch-tiny-gatenet:
  // expand(-1, C, -1, -1), its target picked by Equal → Where from constants; torch-tiny-varnorm: an unbiased
  // variance over the channels divided by x.shape[1] - 1 (Shape → Gather → Sub → Cast); torch-tiny-resize and
  // torch-tiny-upsample: F.interpolate as Resize — bilinear ×0.5, nearest ×2, bilinear to a size with
  // align_corners, bicubic ×0.5.
  for (const fixture of ['torch-tiny-resnet', 'torch-tiny-mobilenet', 'torch-tiny-resnet-folded', 'torch-tiny-senet', 'torch-tiny-gnnet', 'torch-tiny-gn1net', 'torch-tiny-gatenet', 'torch-tiny-varnorm', 'torch-tiny-resize', 'torch-tiny-upsample']) {
    it(`${fixture} (PyTorch export) equals PyTorch and ONNX Runtime`, async () => {
      const graph = await readModel(path.join(FIXTURES, `${fixture}.onnx`));
      const side = JSON.parse(readFileSync(path.join(FIXTURES, `${fixture}.json`), 'utf8')) as {
        input_dims: number[];
        input: number[];
        output_dims: number[];
        output: number[];
      };
      const x = makeTensor('float32', side.input_dims, Float32Array.from(side.input));
      const { ours, diff } = await engineVsOrt(graph, x);
      expect(diff).toBeLessThanOrEqual(1e-4);
      expect(ours.dims).toEqual(side.output_dims);
      expect(maxAbsDiff(ours.data, side.output)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('a GroupNorm model pruned by whole groups (GroupNorm(4, 16) → (2, 8)) equals ONNX Runtime', async () => {
    const graph = await readModel(path.join(FIXTURES, 'torch-tiny-gnnet.onnx'));
    const { graph: pruned } = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1 });
    // Half the norm groups of each GroupNorm: (4, 16) → (2, 8) in the first stage; the norms keep 1s of that length.
    const norms = pruned.nodes.filter((n) => n.opType === 'InstanceNormalization');
    expect(norms.length).toBe(7);
    expect(norms.filter((n) => n.name.startsWith('/blocks/blocks.0/')).map((n) => pruned.initializers.get(n.inputs[1]!)?.dims)).toEqual([[2], [2], [2]]);
    expect(pruned.initializers.get(pruned.nodes.find((n) => n.name === '/blocks/blocks.0/body/body.0/Conv')!.inputs[1]!)!.dims[0]).toBe(8);
    const { diff } = await engineVsOrt(pruned, randomInput([3, 3, 16, 16], 12));
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('follows the batch size, including a final partial batch', async () => {
    const graph = await readModel(path.join(FIXTURES, 'torch-tiny-mobilenet.onnx'));
    const plan = EnginePlan.create(graph, { threads: 1 });
    // The mobilenet fixture reshapes with x.view(x.size(0), -1): its folded shape must not freeze batch 2.
    for (const batch of [1, 3]) {
      const x = randomInput([batch, 3, 16, 16], batch);
      const ours = plan.forward(x)[0]!;
      const ort = await runGraph(graph, { [dataInputs(graph)[0]!.name]: x });
      expect(maxAbsDiff(ours.data, ort[graph.outputs[0]!.name]!.data as Float32Array)).toBeLessThanOrEqual(1e-4);
    }
  });
});
