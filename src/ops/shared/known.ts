import type { Dim } from '../../onnx/graph.js';
import { toNumbers, type Tensor } from '../../onnx/tensor.js';
import type { KnownValue, OpContext } from '../op-def.js';

/** Same limit as shape inference: only small integer tensors are tracked. */
const KNOWN_VALUE_LIMIT = 4096;

/** Known contents of a small int32/int64 tensor (what a Constant node or ConstantOfShape yields). */
export function knownFromTensor(t: Tensor): KnownValue | undefined {
  const isInt = t.dtype === 'int64' || t.dtype === 'int32';
  if (!isInt || t.data.length > KNOWN_VALUE_LIMIT) return undefined;
  return { dims: [...t.dims], values: toNumbers(t) };
}

export function knownOf<A>(ctx: OpContext<A>, index: number): KnownValue | undefined {
  return ctx.inputs[index]?.known;
}

/** Row-major strides of `dims`. */
export function stridesOf(dims: readonly number[]): number[] {
  const strides = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * dims[i + 1]!;
  return strides;
}

/**
 * The flat index into an input of shape `inDims` that broadcasts to output position `outIndex` of
 * shape `outDims` (numpy rules: missing leading axes and size-1 axes repeat).
 */
export function broadcastIndex(outIndex: number, outDims: readonly number[], inDims: readonly number[]): number {
  const offset = outDims.length - inDims.length;
  const inStrides = stridesOf(inDims);
  let rest = outIndex;
  let index = 0;
  const outStrides = stridesOf(outDims);
  for (let axis = 0; axis < outDims.length; axis++) {
    const coord = Math.floor(rest / outStrides[axis]!);
    rest -= coord * outStrides[axis]!;
    const inAxis = axis - offset;
    if (inAxis >= 0 && inDims[inAxis] !== 1) index += coord * inStrides[inAxis]!;
  }
  return index;
}

/** The entries at `indices` along `axis` (Gather, Slice, Split on shape vectors). */
export function takeKnown(known: KnownValue, axis: number, indices: readonly number[]): KnownValue {
  const dims = [...known.dims];
  const outer = dims.slice(0, axis).reduce((p, d) => p * d, 1);
  const inner = dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const size = dims[axis]!;
  const values: Dim[] = [];
  for (let o = 0; o < outer; o++) {
    for (const i of indices) {
      for (let k = 0; k < inner; k++) values.push(known.values[(o * size + i) * inner + k]!);
    }
  }
  dims[axis] = indices.length;
  return { dims, values };
}
