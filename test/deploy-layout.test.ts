/**
 * An int8 model laid out for x64 AMX CPUs (zero point −1 Conv weights, a padded RGB first Conv) or for
 * x64 without VNNI (uint8 weights) is deployed to arm64 and the web in the generic layout their kernels
 * want — exactly the same model (ONNX Runtime's outputs are bit-identical) — and to linux-x64 unchanged.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_STATIC, quantizeStatic } from '../src/compress/quantize/index.js';
import { deploy } from '../src/deploy/bundle.js';
import { MODEL_FILE } from '../src/deploy/config.js';
import { GraphIndex, type Graph } from '../src/onnx/graph.js';
import { decodeModel, writeModel } from '../src/onnx/io.js';
import { float32 } from '../src/onnx/tensor.js';
import { exactInt8Output } from './helpers/int8-host.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-deploy-layout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function convZeroPoints(g: Graph): number[] {
  const index = new GraphIndex(g);
  return g.nodes.filter((n) => n.opType === 'Conv').flatMap((c) => Array.from(g.initializers.get(index.producer.get(c.inputs[1]!)!.inputs[2]!)!.data as Int8Array));
}

describe('slim deploy and the int8 Conv layout', () => {
  it('re-lays an AMX-laid int8 model for arm64 and the web, exactly; leaves it for linux-x64', async () => {
    const rng = new Random(3);
    const x = float32([1, 3, 32, 32], Array.from({ length: 3072 }, () => rng.normal()));
    const { graph: amx } = await quantizeStatic(buildZooModel('resnet18-cifar', { width: 0.25 }), [{ input: x }], { ...DEFAULT_STATIC, cpu: 'amx' }, { threads: 1 });
    expect(convZeroPoints(amx).some((z) => z === -1)).toBe(true);
    expect(amx.nodes.some((n) => n.opType === 'Pad')).toBe(true);
    const file = path.join(dir, 'amx.int8.onnx');
    await writeModel(amx, file);
    const logs: string[] = [];
    const reference = await exactInt8Output(amx, { input: x });
    for (const target of ['linux-arm64', 'web'] as const) {
      const out = path.join(dir, target);
      await deploy({ model: file, target, out, log: (l) => logs.push(l) });
      const shipped = decodeModel(readFileSync(path.join(out, MODEL_FILE)), { file: MODEL_FILE });
      expect(convZeroPoints(shipped).every((z) => z === 0)).toBe(true);
      expect(shipped.nodes.some((n) => n.opType === 'Pad')).toBe(false);
      expect(JSON.parse(shipped.metadata['slimkit.quantization']!)).toMatchObject({ cpu: 'generic' });
      expect(await exactInt8Output(shipped, { input: x })).toEqual(reference);
    }
    expect(logs.filter((l) => /re-laid out for (linux-arm64|web)/.test(l))).toHaveLength(2);
    // To the browser only: its WebAssembly int8 kernels may not pay, and that is for slim bench --target web to say.
    expect(logs.filter((l) => /amx\.int8\.onnx is int8: onnxruntime-web's WebAssembly kernels gain less from int8 than native ones.*slim bench FLOAT INT8 --target web/.test(l))).toHaveLength(1);
    const x64 = path.join(dir, 'linux-x64');
    await deploy({ model: file, target: 'linux-x64', out: x64 });
    expect(readFileSync(path.join(x64, MODEL_FILE)).equals(readFileSync(file))).toBe(true);
  }, 120_000);

  it('re-lays an AVX2-laid (uint8 weights) model for arm64 as int8 at zero point 0, exactly; leaves it for linux-x64', async () => {
    const rng = new Random(5);
    const x = float32([1, 3, 32, 32], Array.from({ length: 3072 }, () => rng.normal()));
    const { graph: avx2 } = await quantizeStatic(buildZooModel('resnet18-cifar', { width: 0.25 }), [{ input: x }], { ...DEFAULT_STATIC, cpu: 'avx2' }, { threads: 1 });
    expect(weightTypes(avx2)).toEqual(['uint8']);
    expect(JSON.parse(avx2.metadata['slimkit.quantization']!)).toMatchObject({ cpu: 'avx2' });
    const file = path.join(dir, 'avx2.int8.onnx');
    await writeModel(avx2, file);
    const out = path.join(dir, 'arm64-from-avx2');
    await deploy({ model: file, target: 'linux-arm64', out });
    const shipped = decodeModel(readFileSync(path.join(out, MODEL_FILE)), { file: MODEL_FILE });
    expect(weightTypes(shipped)).toEqual(['int8']);
    expect(convZeroPoints(shipped).every((z) => z === 0)).toBe(true);
    expect(JSON.parse(shipped.metadata['slimkit.quantization']!)).toMatchObject({ cpu: 'generic' });
    expect(await exactInt8Output(shipped, { input: x })).toEqual(await exactInt8Output(avx2, { input: x }));
    const x64 = path.join(dir, 'x64-from-avx2');
    await deploy({ model: file, target: 'linux-x64', out: x64 });
    expect(readFileSync(path.join(x64, MODEL_FILE)).equals(readFileSync(file))).toBe(true);
  }, 120_000);
});

/** The types of the values every weighted layer's weight DequantizeLinear reads. */
function weightTypes(g: Graph): string[] {
  const index = new GraphIndex(g);
  const layers = g.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
  return [...new Set(layers.map((n) => g.initializers.get(index.producer.get(n.inputs[1]!)!.inputs[0]!)!.dtype))];
}
