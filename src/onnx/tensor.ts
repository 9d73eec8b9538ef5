import { allocArray, type DType, type TypedArrayOf } from './dtype.js';

/**
 * A dense tensor. Data is never mutated in place once a tensor is part of a Graph: passes that change
 * weights allocate new arrays, so clones of a Graph may share tensors safely.
 */
export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: TypedArrayOf[D];
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function makeTensor<D extends DType>(dtype: D, dims: readonly number[], data?: TypedArrayOf[D]): Tensor<D> {
  const n = numel(dims);
  const array = data ?? allocArray(dtype, n);
  if (array.length !== n) {
    throw new RangeError(`tensor data has ${array.length} elements but dims [${dims.join(', ')}] need ${n}`);
  }
  return { dtype, dims: [...dims], data: array };
}

/** A float32 tensor from plain numbers. */
export function float32(dims: readonly number[], values: ArrayLike<number>): Tensor<'float32'> {
  return makeTensor('float32', dims, Float32Array.from(values));
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * A number or bigint as an int64: numbers truncated, NaN 0, and everything clamped into range
 * (INT64_MAX read as a double is 2^63, one past the end, which BigInt64Array would wrap to INT64_MIN).
 */
export function saturatingInt64(v: number | bigint): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (Number.isNaN(v)) b = 0n;
  else if (!Number.isFinite(v)) b = v > 0 ? INT64_MAX : INT64_MIN;
  else b = BigInt(Math.trunc(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

/** An int64 tensor from plain numbers (the type ONNX uses for shapes, axes and indices), saturating. */
export function int64(dims: readonly number[], values: ArrayLike<number>): Tensor<'int64'> {
  return makeTensor('int64', dims, BigInt64Array.from(Array.from(values, saturatingInt64)));
}

/**
 * Element values as JS numbers (int64 converted, precision lost above 2^53; float16/bfloat16 decoded).
 * For strings this throws: there is no numeric view of them.
 */
export function toNumbers(t: Tensor): number[] {
  switch (t.dtype) {
    case 'string':
      throw new TypeError('a string tensor has no numeric values');
    case 'float16':
      return Array.from(t.data as Uint16Array, float16BitsToNumber);
    case 'bfloat16':
      return Array.from(t.data as Uint16Array, (b) => bfloat16BitsToNumber(b));
    case 'int64':
    case 'uint64':
      return Array.from(t.data as BigInt64Array, (v) => Number(v));
    default:
      return Array.from(t.data as ArrayLike<number>);
  }
}

/** Size in bytes of the raw element data (0 for strings, which have no fixed width). */
export function byteLength(t: Tensor): number {
  if (t.dtype === 'string') return 0;
  return (t.data as ArrayBufferView).byteLength;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Round-to-nearest-even conversion, the same as numpy's astype(float16). */
export function numberToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function bfloat16BitsToNumber(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}
