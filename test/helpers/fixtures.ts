/** Paths and loaders for the committed PyTorch-exported fixtures (made by scripts/make-torch-fixtures.py). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Random } from '../../src/util/random.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
export const fixturePath = (name: string): string => path.join(FIXTURES, name);

/** The CIFAR-10 binary files: $SLIM_DATA_DIR, else ../shared/data/cifar10 beside the repo. */
export const CIFAR_DIR = process.env.SLIM_DATA_DIR ?? path.resolve(REPO_ROOT, '../shared/data/cifar10');

export interface TorchSidecar {
  input: Tensor<'float32'>;
  output: Tensor<'float32'>;
}

/** The fixed input and PyTorch's output saved beside a fixture. */
export function torchSidecar(onnxName: string): TorchSidecar {
  const raw = JSON.parse(readFileSync(fixturePath(onnxName.replace(/\.onnx$/, '.json')), 'utf8')) as {
    input_dims: number[];
    input: number[];
    output_dims: number[];
    output: number[];
  };
  return { input: float32(raw.input_dims, raw.input), output: float32(raw.output_dims, raw.output) };
}

export function randomInput(dims: number[], seed = 1): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal()));
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  if (x.length !== y.length) throw new Error(`sizes differ: ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}
