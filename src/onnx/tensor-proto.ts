/**
 * TensorProto ↔ Tensor. Reads raw_data, every typed field and external data; writes raw_data for
 * numbers and string_data for strings. Sizes are checked before anything is allocated, so a damaged
 * file cannot ask for gigabytes. Assumes a little-endian host (ONNX raw_data is little-endian), as
 * every platform Node and ONNX Runtime ship for is.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { inputError, SlimError } from '../errors.js';
import { allocArray, dtypeFromOnnx, DTYPES, onnxDtype, type DType, type TypedArrayOf } from './dtype.js';
import { DATA_LOCATION, DATA_TYPE_NAMES, has, int64ToBigInt, int64ToNumber, type ITensorProto } from './proto.js';
import { numel, type Tensor } from './tensor.js';

/** Largest element count slimkit accepts in one tensor (ONNX Runtime's own limit is similar). */
export const MAX_ELEMENTS = 2 ** 31;

export interface TensorContext {
  /** The model or .pb file, for error messages. */
  file?: string;
  /** Folder that external data locations are relative to (the model's folder). */
  baseDir?: string;
  /** Collects the resolved path of every external data file read (for sizes on disk). */
  externalFiles?: Set<string>;
  /** What the tensor is, for error messages: "initializer 'w'", "attribute 'value' of node 'c'". */
  where: string;
}

/** A name from a file, quoted for a message; names from damaged files can be long binary junk. */
export function quoted(name: string, max = 80): string {
  return `'${name.length > max ? `${name.slice(0, max)}…` : name}'`;
}

function fail(ctx: TensorContext, problem: string, fix?: string): SlimError {
  return inputError({
    ...(ctx.file ? { file: ctx.file } : {}),
    where: ctx.where,
    problem,
    ...(fix ? { fix } : {}),
  });
}

/** Dims for a message, shortened: a damaged file can list thousands. */
function showDims(dims: readonly number[]): string {
  return `[${dims.slice(0, 8).join(', ')}${dims.length > 8 ? ', …' : ''}]`;
}

const DAMAGED = 'the file is damaged or was written by a broken exporter; re-export it';

function checkedDims(p: ITensorProto, ctx: TensorContext): { dims: number[]; numel: number } {
  const dims: number[] = [];
  let numel = 1;
  for (const d of p.dims ?? []) {
    const n = int64ToNumber(d);
    if (!Number.isSafeInteger(n) || n < 0) throw fail(ctx, `has an invalid dimension ${n}`, DAMAGED);
    dims.push(n);
    numel *= n;
    if (numel > MAX_ELEMENTS) {
      throw fail(ctx, `has dims ${showDims((p.dims ?? []).slice(0, 9).map(int64ToNumber))}, more than 2^31 elements`, DAMAGED);
    }
  }
  return { dims, numel };
}

/** Decode one TensorProto. Throws a SlimError naming `ctx.where` on anything it cannot represent. */
export function tensorFromProto(p: ITensorProto, ctx: TensorContext): Tensor {
  const code = p.data_type ?? 0;
  const dtype = dtypeFromOnnx(code);
  if (!dtype) {
    const name = DATA_TYPE_NAMES.get(code);
    throw fail(ctx, `has data type ${name ? `${name} (${code})` : `code ${code}`}, which slimkit does not support`,
      'slimkit handles float, integer, bool and string tensors; convert the model first');
  }
  if (p.segment) throw fail(ctx, 'is stored in segments, which slimkit does not support', 're-save the model without segments');
  const { dims, numel } = checkedDims(p, ctx);

  if ((p.data_location ?? DATA_LOCATION.DEFAULT) === DATA_LOCATION.EXTERNAL) {
    if (dtype === 'string') throw fail(ctx, 'is a string tensor stored as external data, which ONNX does not allow', DAMAGED);
    return { dtype, dims, data: fromBytes(dtype, readExternal(p, ctx, numel * DTYPES[dtype].bytes)) };
  }
  if (dtype === 'string') return { dtype, dims, data: typedField(p, dtype, numel, ctx) };
  if (has(p, 'raw_data')) {
    const raw = p.raw_data!;
    const want = numel * DTYPES[dtype].bytes;
    if (raw.length !== want) {
      throw fail(ctx, `has ${raw.length} bytes of raw_data but dims ${showDims(dims)} of ${dtype} need ${want}`, DAMAGED);
    }
    return { dtype, dims, data: fromBytes(dtype, raw) };
  }
  return { dtype, dims, data: typedField(p, dtype, numel, ctx) };
}

/** Copy little-endian bytes into a fresh, aligned array (protobufjs hands out views into the file). */
function fromBytes<D extends Exclude<DType, 'string'>>(dtype: D, bytes: Uint8Array): TypedArrayOf[D] {
  const width = DTYPES[dtype].bytes;
  const out = allocArray(dtype, bytes.length / width) as Exclude<TypedArrayOf[DType], string[]>;
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  return out as TypedArrayOf[D];
}

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/** The typed field that holds each dtype when raw_data is not used (onnx.proto, TensorProto). */
function typedField(p: ITensorProto, dtype: DType, numel: number, ctx: TensorContext): TypedArrayOf[DType] {
  const field = dtype === 'float32' ? 'float_data'
    : dtype === 'float64' ? 'double_data'
    : dtype === 'int64' ? 'int64_data'
    : dtype === 'uint32' || dtype === 'uint64' ? 'uint64_data'
    : dtype === 'string' ? 'string_data'
    : 'int32_data';
  const values = (p[field] ?? []) as unknown[];
  if (values.length !== numel) {
    throw fail(ctx, `has ${values.length} values in ${field} but its dims need ${numel}`, DAMAGED);
  }
  switch (dtype) {
    case 'string':
      return (p.string_data ?? []).map((b) => utf8.decode(b));
    case 'int64':
      return BigInt64Array.from(p.int64_data ?? [], (v) => int64ToBigInt(v));
    case 'uint64':
      return BigUint64Array.from(p.uint64_data ?? [], (v) => int64ToBigInt(v, true));
    case 'uint32':
      return Uint32Array.from(p.uint64_data ?? [], (v) => Number(int64ToBigInt(v, true) & 0xffffffffn));
    case 'float32':
      return Float32Array.from(p.float_data ?? []);
    case 'float64':
      return Float64Array.from(p.double_data ?? []);
    default: {
      // int32_data carries int32 and every narrower type (float16/bfloat16 as their bit patterns).
      const out = allocArray(dtype, numel) as Exclude<TypedArrayOf[DType], string[] | BigInt64Array | BigUint64Array>;
      const src = p.int32_data ?? [];
      for (let i = 0; i < numel; i++) out[i] = src[i]!;
      return out;
    }
  }
}

function externalEntries(p: ITensorProto): Map<string, string> {
  return new Map((p.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
}

function parseCount(value: string | undefined, what: string, ctx: TensorContext): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw fail(ctx, `has external data ${what} '${value}', which is not a byte count`, DAMAGED);
  return Number(value);
}

/** Resolve an external data location, refusing absolute paths and anything outside the model's folder. */
export function resolveExternalPath(location: string, ctx: TensorContext): string {
  const fix = 'keep external data files in the model\'s folder and refer to them by relative name';
  if (isAbsolute(location) || /^[a-zA-Z]:|^[\\/]/.test(location)) {
    throw fail(ctx, `refers to external data at the absolute path '${location}', which slimkit refuses`, fix);
  }
  if (!ctx.baseDir) {
    throw fail(ctx, `has external data ('${location}') but the model's folder is unknown`, 'load the model from its file (readModel) instead of from bytes');
  }
  const base = resolve(ctx.baseDir);
  const target = resolve(base, location);
  const inside = (root: string, p: string): boolean => {
    const rel = relative(root, p);
    return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel);
  };
  if (!inside(base, target)) {
    throw fail(ctx, `refers to external data '${location}', which lies outside the model's folder`, fix);
  }
  // Symbolic links could still lead outside: compare real paths when the file exists.
  let real: string;
  try {
    real = realpathSync(target);
  } catch {
    throw fail(ctx, `refers to external data '${location}', which does not exist in ${base}`, 'copy the .data file next to the model');
  }
  if (!inside(realpathSync(base), real)) {
    throw fail(ctx, `refers to external data '${location}', which links to a file outside the model's folder`, fix);
  }
  // A folder gave an internal error; a FIFO blocked the open forever.
  if (!statSync(real).isFile()) {
    throw fail(ctx, `refers to external data '${location}', which is not a file`, 'copy the .data file written with the model next to it');
  }
  return real;
}

function readExternal(p: ITensorProto, ctx: TensorContext, want: number): Uint8Array {
  const entries = externalEntries(p);
  const location = entries.get('location');
  if (!location) throw fail(ctx, 'is marked as external data but names no location', DAMAGED);
  const path = resolveExternalPath(location, ctx);
  ctx.externalFiles?.add(path);
  const offset = parseCount(entries.get('offset'), 'offset', ctx) ?? 0;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fail(ctx, `cannot open external data '${location}': ${(e as Error).message}`, 'check the file permissions');
  }
  try {
    const size = fstatSync(fd).size;
    const length = parseCount(entries.get('length'), 'length', ctx) ?? Math.max(0, size - offset);
    if (offset + length > size) {
      throw fail(ctx, `needs bytes ${offset}..${offset + length} of '${location}', which has only ${size}`, DAMAGED);
    }
    if (length !== want) throw fail(ctx, `has ${length} bytes of external data but its dims need ${want}`, DAMAGED);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw fail(ctx, `external data '${location}' ended early`, DAMAGED);
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Collects large tensors into one external data blob while a model is encoded. */
export class ExternalDataWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  /** @param location file name written into each tensor, relative to the model's folder. */
  constructor(readonly location: string, readonly thresholdBytes: number, private readonly alignment = 4096) {}

  /** Append `bytes` (aligned, so runtimes can map it) and return the external_data entries. */
  add(bytes: Uint8Array): { key: string; value: string }[] {
    const pad = (this.alignment - (this.size % this.alignment)) % this.alignment;
    if (pad) this.push(new Uint8Array(pad));
    const offset = this.size;
    this.push(Uint8Array.prototype.slice.call(bytes));
    return [
      { key: 'location', value: this.location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.length) },
    ];
  }

  get byteLength(): number {
    return this.size;
  }

  finish(): Uint8Array {
    return Buffer.concat(this.chunks, this.size);
  }

  private push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }
}

/** A tensor's element bytes, little-endian, as a view (no copy). */
export function tensorBytes(t: Tensor): Uint8Array {
  const a = t.data as ArrayBufferView;
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Encode one tensor; numeric data goes to raw_data, or to `external` when it is at least its threshold. */
export function tensorToProto(t: Tensor, name: string, external?: ExternalDataWriter): ITensorProto {
  // A tensor whose data does not fill its dims would write a file slimkit itself refuses to read:
  // fail here, before anything replaces a good model on disk. Such a tensor is a slimkit bug.
  if (!Object.hasOwn(DTYPES, t.dtype)) throw new Error(`tensor '${name}' has unknown dtype '${String(t.dtype)}'`);
  if (t.data.length !== numel(t.dims)) {
    throw new Error(`tensor '${name}' has ${t.data.length} elements but dims [${t.dims.join(', ')}] need ${numel(t.dims)}`);
  }
  const p: ITensorProto = { dims: [...t.dims], data_type: onnxDtype(t.dtype) };
  if (name) p.name = name;
  if (t.dtype === 'string') {
    p.string_data = (t.data as string[]).map((s) => utf8Encoder.encode(s));
    return p;
  }
  const bytes = tensorBytes(t);
  if (external && bytes.length >= external.thresholdBytes && bytes.length > 0) {
    p.data_location = DATA_LOCATION.EXTERNAL;
    p.external_data = external.add(bytes);
  } else {
    p.raw_data = bytes;
  }
  return p;
}
