/**
 * The seeded random inputs a benchmark feeds a model. Pure: the browser benchmark page builds the very
 * same tensors from the same seed, so its outputs can be checked against onnxruntime-node's.
 */
import { inputError, usageError } from '../errors.js';
import type { DType } from '../onnx/dtype.js';
import type { Dim } from '../onnx/graph.js';
import { makeTensor, numberToFloat16Bits, numel, type Tensor } from '../onnx/tensor.js';
import type { Random } from '../util/random.js';

/** A model input as a runtime reports it: fixed dims as numbers, symbolic ones as names. */
export interface InputDescription {
  name: string;
  dtype?: DType;
  dims?: Dim[];
}

/** An input with the concrete shape and element type a benchmark feeds it. */
export interface BenchmarkInput {
  name: string;
  dtype: Exclude<DType, 'string'>;
  dims: number[];
}

/**
 * Concrete shapes for every input: dim 0 symbolic → the batch; any other symbolic or unknown dim needs
 * an explicit shape. A given shape is used as it is, except that a symbolic batch dim still takes the
 * batch. `source` names the model in errors.
 */
export function benchmarkInputs(source: string, inputs: readonly InputDescription[], batch: number, shapes?: Record<string, number[]>): BenchmarkInput[] {
  return inputs.map((input) => {
    const dims = input.dims;
    const fromModel = dims?.every((d, i) => i === 0 || typeof d === 'number') ? dims : undefined;
    const base = shapes?.[input.name] ?? fromModel;
    if (!base) {
      const shape = dims ? `[${dims.join(', ')}]` : 'unknown';
      throw usageError(`${source}: input '${input.name}' has shape ${shape}; the benchmark cannot choose its free dims`, 'give its height and width (--image-size H,W)');
    }
    if (!input.dtype || input.dtype === 'string') {
      throw inputError({ file: source, where: `input '${input.name}'`, problem: `takes ${input.dtype ?? 'a non-tensor value'}, which the benchmark cannot generate` });
    }
    return { name: input.name, dtype: input.dtype, dims: base.map((d, i) => (i === 0 && typeof dims?.[0] === 'string' ? batch : (d as number))) };
  });
}

/** Standard normal floats, 0–255 bytes, small integers, random booleans. */
export function randomTensor(dtype: Exclude<DType, 'string'>, dims: number[], random: Random): Tensor {
  const t = makeTensor(dtype, dims);
  const n = numel(dims);
  const data = t.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) data[i] = BigInt(random.int(10));
  } else if (dtype === 'float32' || dtype === 'float64') {
    for (let i = 0; i < n; i++) data[i] = random.normal();
  } else if (dtype === 'float16') {
    for (let i = 0; i < n; i++) data[i] = numberToFloat16Bits(random.normal());
  } else if (dtype === 'bool') {
    for (let i = 0; i < n; i++) data[i] = random.int(2);
  } else if (dtype === 'uint8') {
    for (let i = 0; i < n; i++) data[i] = random.int(256);
  } else {
    for (let i = 0; i < n; i++) (data as Int32Array)[i] = random.int(10);
  }
  return t;
}
