/**
 * The ONNX protobuf message types, built once from the generated descriptor (onnx-schema.ts) with
 * protobufjs's light runtime. This is the only module that touches protobufjs; io.ts converts between
 * these messages and the Graph IR.
 */
import protobuf from 'protobufjs/light.js';
import { saturatingInt64 } from './tensor.js';
import {
  ONNX_SCHEMA,
  type IAttributeProto,
  type IModelProto,
  type ITensorProto,
  type Int64,
} from './onnx-schema.js';

export type * from './onnx-schema.js';

/** decode/encode for one message type, typed with the generated interface. */
export interface MessageCodec<T> {
  /** Throws protobufjs's Error or RangeError on malformed input; io.ts turns those into SlimErrors. */
  decode(bytes: Uint8Array): T;
  encode(message: T): Uint8Array;
}

const root = protobuf.Root.fromJSON(ONNX_SCHEMA as protobuf.INamespace);

function codec<T>(name: string): MessageCodec<T> {
  const type = root.lookupType(name);
  return {
    decode: (bytes) => type.decode(bytes) as T,
    encode: (message) => type.encode(message as protobuf.Message).finish(),
  };
}

export const ModelProto = codec<IModelProto>('onnx.ModelProto');
export const TensorProto = codec<ITensorProto>('onnx.TensorProto');
export const AttributeProto = codec<IAttributeProto>('onnx.AttributeProto');

/** Enum values used by io.ts, read from the schema so they cannot drift from onnx.proto. */
export const ATTRIBUTE_TYPE = root.lookupEnum('onnx.AttributeProto.AttributeType').values as Readonly<Record<
  'UNDEFINED' | 'FLOAT' | 'INT' | 'STRING' | 'TENSOR' | 'GRAPH' | 'SPARSE_TENSOR' | 'TYPE_PROTO' | 'FLOATS' | 'INTS' |
  'STRINGS' | 'TENSORS' | 'GRAPHS' | 'SPARSE_TENSORS' | 'TYPE_PROTOS',
  number
>>;
export const DATA_LOCATION = root.lookupEnum('onnx.TensorProto.DataLocation').values as Readonly<
  Record<'DEFAULT' | 'EXTERNAL', number>
>;
export const DATA_TYPE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(root.lookupEnum('onnx.TensorProto.DataType').values).map(([k, v]) => [v, k]),
);

/** True when a decoded message carries `field` (proto2 presence: protobufjs keeps defaults on the prototype). */
export function has<T extends object>(message: T, field: keyof T & string): boolean {
  return Object.hasOwn(message, field) && message[field] != null;
}

const TWO_32 = 4294967296;

/** A signed int64 as a JS number (exact up to 2^53, rounded beyond). */
export function int64ToNumber(v: Int64 | undefined | null): number {
  if (v == null) return 0;
  if (typeof v === 'number') return v;
  return v.unsigned ? (v.high >>> 0) * TWO_32 + (v.low >>> 0) : (v.high | 0) * TWO_32 + (v.low >>> 0);
}

/** An int64 exactly, as a bigint; `unsigned` reads the bits as uint64. */
export function int64ToBigInt(v: Int64 | undefined | null, unsigned = false): bigint {
  if (v == null) return 0n;
  const bits = typeof v === 'number'
    ? BigInt.asUintN(64, BigInt(Math.trunc(v)))
    : (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned ? BigInt.asUintN(64, bits) : BigInt.asIntN(64, bits);
}

/** A number or bigint as the Long-like object protobufjs writes, saturating as `saturatingInt64`. */
export function toInt64(v: number | bigint): Int64 {
  const bits = BigInt.asUintN(64, saturatingInt64(v));
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned: false };
}
