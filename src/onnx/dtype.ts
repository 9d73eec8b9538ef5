/**
 * Element types, keyed by readable names. The ONNX enum values come from
 * TensorProto.DataType in onnx.proto; `bytes` is the stored width.
 */
export const DTYPES = {
  float32: { onnx: 1, bytes: 4 },
  uint8: { onnx: 2, bytes: 1 },
  int8: { onnx: 3, bytes: 1 },
  uint16: { onnx: 4, bytes: 2 },
  int16: { onnx: 5, bytes: 2 },
  int32: { onnx: 6, bytes: 4 },
  int64: { onnx: 7, bytes: 8 },
  string: { onnx: 8, bytes: 0 },
  bool: { onnx: 9, bytes: 1 },
  float16: { onnx: 10, bytes: 2 },
  float64: { onnx: 11, bytes: 8 },
  uint32: { onnx: 12, bytes: 4 },
  uint64: { onnx: 13, bytes: 8 },
  bfloat16: { onnx: 16, bytes: 2 },
} as const;

export type DType = keyof typeof DTYPES;

/** The JS array that holds each dtype. float16/bfloat16 keep raw bits; bool is one byte per element. */
export interface TypedArrayOf {
  float32: Float32Array;
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  string: string[];
  bool: Uint8Array;
  float16: Uint16Array;
  float64: Float64Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bfloat16: Uint16Array;
}

export type TensorArray = TypedArrayOf[DType];

const BY_ONNX = new Map<number, DType>(
  (Object.keys(DTYPES) as DType[]).map((name) => [DTYPES[name].onnx, name]),
);

export function dtypeFromOnnx(code: number): DType | undefined {
  return BY_ONNX.get(code);
}

export function onnxDtype(dtype: DType): number {
  return DTYPES[dtype].onnx;
}

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64', 'bfloat16']);
export const INT_DTYPES: ReadonlySet<DType> = new Set([
  'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'uint32', 'uint64',
]);

export function isFloat(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

const INTEGER_RANGES: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
};

/** [min, max] of an integer type up to 32 bits (exact as JS numbers); undefined for the others. */
export function integerRange(dtype: DType): readonly [number, number] | undefined {
  return INTEGER_RANGES[dtype];
}

/** Allocate a zeroed array of `length` elements for `dtype`. */
export function allocArray<D extends DType>(dtype: D, length: number): TypedArrayOf[D] {
  const make = ARRAY_CTORS[dtype] as (n: number) => TypedArrayOf[D];
  return make(length);
}

const ARRAY_CTORS: { [D in DType]: (n: number) => TypedArrayOf[D] } = {
  float32: (n) => new Float32Array(n),
  uint8: (n) => new Uint8Array(n),
  int8: (n) => new Int8Array(n),
  uint16: (n) => new Uint16Array(n),
  int16: (n) => new Int16Array(n),
  int32: (n) => new Int32Array(n),
  int64: (n) => new BigInt64Array(n),
  string: (n) => new Array<string>(n).fill(''),
  bool: (n) => new Uint8Array(n),
  float16: (n) => new Uint16Array(n),
  float64: (n) => new Float64Array(n),
  uint32: (n) => new Uint32Array(n),
  uint64: (n) => new BigUint64Array(n),
  bfloat16: (n) => new Uint16Array(n),
};
