/**
 * ONNX files ↔ Graph. Decoding never trusts the bytes: protobuf errors, impossible sizes and types
 * slimkit cannot represent all become one-line SlimErrors that name the file and the tensor or node.
 * Writing is atomic (temp file in the same folder, fsync, rename).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { lstat, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { linkTarget, specialFileKind } from '../util/files.js';
import { hostname } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { closest } from '../util/suggest.js';
import { inputError, SlimError } from '../errors.js';
import { dtypeFromOnnx, onnxDtype } from './dtype.js';
import { inlineFunctions, type LocalFunction } from './functions.js';
import type { Attribute, Dim, Graph, Node, ValueInfo } from './graph.js';
import {
  AttributeProto,
  ATTRIBUTE_TYPE as AT,
  DATA_TYPE_NAMES,
  has,
  int64ToNumber,
  ModelProto,
  TensorProto,
  toInt64,
  type IAttributeProto,
  type IGraphProto,
  type IModelProto,
  type INodeProto,
  type ITensorProto,
  type IValueInfoProto,
} from './proto.js';
import type { Tensor } from './tensor.js';
import { ExternalDataWriter, quoted, tensorFromProto, tensorToProto, type TensorContext } from './tensor-proto.js';
import { imageKindText, sniffImage } from '../serve/sniff.js';

export interface DecodeOptions {
  /** Named in error messages. */
  file?: string;
  /** Folder that external data paths are relative to; without it, external data is refused. */
  baseDir?: string;
  /** Filled with the resolved path of every external data file the model's tensors were read from. */
  externalFiles?: Set<string>;
}

export interface EncodeOptions {
  /** Move tensors of at least `thresholdBytes` (default 1024) into a separate blob named `file`. */
  externalData?: { file: string; thresholdBytes?: number };
}

export interface WriteOptions {
  /** true, or a threshold: write large initializers to `<model file name>.data` beside the model. */
  externalData?: boolean | { thresholdBytes: number };
}

const DEFAULT_EXTERNAL_THRESHOLD = 1024;
/** protobuf cannot address more than 2 GiB in one message. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** Unknown dimensions (neither dim_value nor dim_param) get symbols like "?1" and write back as unknown. */
const UNKNOWN_DIM = /^\?\d+$/;

const NOT_ONNX = 'the file is damaged or is not an ONNX model; re-export or re-download it';

/** A protobufjs failure in words (it reports truncation as "index out of range: 10 + 5 > 12"). */
function describeProtobufError(e: unknown): string {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return 'messages are nested too deeply';
  const message = e instanceof Error ? e.message : String(e);
  const range = /index out of range: (\d+) \+ (\d+) > (\d+)/.exec(message);
  if (range) return `a field at byte ${range[1]} needs ${range[2]} more byte(s) but the data ends at byte ${range[3]} (truncated?)`;
  if (message === 'max depth exceeded') return 'messages are nested more than 100 deep';
  if (message === 'index out of range') return 'a field runs past the end of the message that holds it (truncated?)';
  return message.split('\n')[0]!.slice(0, 200);
}

function protobufDecode<T>(decode: (b: Uint8Array) => T, bytes: Uint8Array, file: string | undefined, what: string): T {
  try {
    return decode(bytes);
  } catch (e) {
    throw inputError({
      ...(file ? { file } : {}),
      problem: `is not a valid ${what}: ${describeProtobufError(e)}`,
      fix: NOT_ONNX,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Decoder {
  private unknownDims = 0;

  constructor(private readonly options: DecodeOptions) {}

  fail(where: string | undefined, problem: string, fix?: string): SlimError {
    const { file } = this.options;
    return inputError({ ...(file ? { file } : {}), ...(where ? { where } : {}), problem, ...(fix ? { fix } : {}) });
  }

  tensorContext(where: string): TensorContext {
    return { ...this.options, where };
  }

  model(m: IModelProto): Graph {
    const g = m.graph;
    if (!g) throw this.fail(undefined, 'has no graph', NOT_ONNX);
    const opsets: Record<string, number> = {};
    for (const o of m.opset_import ?? []) opsets[o.domain === 'ai.onnx' ? '' : (o.domain ?? '')] = int64ToNumber(o.version);
    if (Object.keys(opsets).length === 0) throw this.fail(undefined, 'imports no opset', NOT_ONNX);
    if ((g.sparse_initializer ?? []).length > 0) {
      const names = g.sparse_initializer!.map((s) => quoted(s.values?.name ?? '')).slice(0, 3).join(', ');
      throw this.fail(`sparse initializer ${names}`, 'is a sparse tensor, which slimkit does not support',
        'store the weights as dense initializers (onnx.numpy_helper) and re-save the model');
    }
    const initializers = new Map<string, Tensor>();
    for (const t of g.initializer ?? []) {
      const name = t.name ?? '';
      const where = `initializer ${quoted(name)}`;
      if (initializers.has(name)) throw this.fail(where, 'appears twice', 'the file is damaged; re-export it');
      initializers.set(name, tensorFromProto(t, this.tensorContext(where)));
    }
    // Inputs and outputs first, so that their unknown dims get the first symbols (?1, ?2, ...).
    const inputs = (g.input ?? []).map((v) => this.valueInfo(v, 'graph input'));
    const outputs = (g.output ?? []).map((v) => this.valueInfo(v, 'graph output'));
    const valueInfo = new Map<string, ValueInfo>();
    for (const v of g.value_info ?? []) {
      // Intermediate types are hints: entries slimkit cannot represent (sequences, no type) are dropped.
      if (v.type?.value !== 'tensor_type' || !dtypeFromOnnx(v.type.tensor_type?.elem_type ?? 0)) continue;
      const info = this.valueInfo(v, 'value');
      valueInfo.set(info.name, info);
    }
    const metadata: Record<string, string> = {};
    for (const e of m.metadata_props ?? []) metadata[e.key ?? ''] = e.value ?? '';
    const nodes = this.withFunctionsInlined((g.node ?? []).map((n, i) => this.node(n, i)), m, opsets);
    return {
      name: g.name ?? '',
      irVersion: int64ToNumber(m.ir_version),
      opsets,
      producerName: m.producer_name ?? '',
      producerVersion: m.producer_version ?? '',
      docString: m.doc_string ?? '',
      ...(g.doc_string ? { graphDocString: g.doc_string } : {}),
      ...(m.model_version && int64ToNumber(m.model_version) !== 0 ? { modelVersion: int64ToNumber(m.model_version) } : {}),
      ...(m.domain ? { domain: m.domain } : {}),
      metadata,
      inputs,
      outputs,
      nodes,
      ...((m.functions ?? []).length ? { inlinedFunctions: (m.functions ?? []).map((f) => f.name ?? '') } : {}),
      initializers,
      valueInfo,
    };
  }

  /** Calls of model-local functions replaced by their bodies (functions.ts); their domains' imports go. */
  withFunctionsInlined(nodes: Node[], m: IModelProto, opsets: Record<string, number>): Node[] {
    const protos = m.functions ?? [];
    if (protos.length === 0) return nodes;
    const functions: LocalFunction[] = protos.map((f) => {
      const own: Record<string, number> = {};
      for (const o of f.opset_import ?? []) own[o.domain === 'ai.onnx' ? '' : (o.domain ?? '')] = int64ToNumber(o.version);
      const domain = f.domain === 'ai.onnx' ? '' : (f.domain ?? '');
      return { domain, name: f.name ?? '', inputs: [...(f.input ?? [])], outputs: [...(f.output ?? [])], attributes: [...(f.attribute ?? [])], nodes: (f.node ?? []).map((n, i) => this.node(n, i)), opsets: own };
    });
    const g = m.graph!;
    const names = [...(g.initializer ?? []), ...(g.input ?? []), ...(g.output ?? []), ...(g.value_info ?? [])].map((v) => v.name ?? '');
    const inlined = inlineFunctions(nodes, functions, {
      opsets,
      names,
      fail: (problem) => this.fail(undefined, problem, 're-export the model without export_modules_as_functions'),
    });
    const used = new Set(inlined.map((n) => n.domain));
    for (const f of functions) if (f.domain !== '' && !used.has(f.domain)) delete opsets[f.domain];
    // Domains only a function body imported (com.microsoft, say) are the model's now.
    for (const f of functions) for (const [domain, version] of Object.entries(f.opsets)) if (used.has(domain) && opsets[domain] === undefined) opsets[domain] = version;
    return inlined;
  }

  valueInfo(v: IValueInfoProto, role: string): ValueInfo {
    const name = v.name ?? '';
    const where = `${role} ${quoted(name)}`;
    const type = v.type;
    if (!type || !type.value) throw this.fail(where, 'has no type', 'the file is damaged; re-export it');
    if (type.value !== 'tensor_type') {
      const kind = type.value.replace('_type', '').replace('_', ' ');
      throw this.fail(where, `is ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}, not a tensor; slimkit handles tensor inputs and outputs only`,
        'use a model whose inputs and outputs are plain tensors');
    }
    const code = type.tensor_type?.elem_type ?? 0;
    const dtype = dtypeFromOnnx(code);
    if (!dtype) {
      const typeName = DATA_TYPE_NAMES.get(code);
      throw this.fail(where, `has element type ${typeName ? `${typeName} (${code})` : `code ${code}`}, which slimkit does not support`,
        'slimkit handles float, integer, bool and string tensors');
    }
    const shape = type.tensor_type?.shape;
    if (!shape) return { name, dtype };
    return { name, dtype, shape: (shape.dim ?? []).map((d): Dim => {
      if (d.value === 'dim_value') {
        const n = int64ToNumber(d.dim_value);
        if (Number.isSafeInteger(n) && n >= 0) return n;
      } else if (d.value === 'dim_param' && d.dim_param && !UNKNOWN_DIM.test(d.dim_param)) {
        return d.dim_param;
      }
      return `?${++this.unknownDims}`;
    }) };
  }

  node(n: INodeProto, index: number): Node {
    const name = n.name ?? '';
    const where = `node ${name ? quoted(name) : `#${index}`} (${quoted(n.op_type ?? '')})`;
    const attributes: Record<string, Attribute> = {};
    for (const a of n.attribute ?? []) {
      const key = a.name ?? '';
      if (Object.hasOwn(attributes, key)) throw this.fail(where, `has attribute ${quoted(key)} twice`, 'the file is damaged; re-export it');
      attributes[key] = this.attribute(a, `${where}, attribute ${quoted(key)}`);
    }
    const node: Node = {
      name,
      opType: n.op_type ?? '',
      domain: n.domain === 'ai.onnx' ? '' : (n.domain ?? ''),
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attributes,
    };
    if (n.doc_string) node.docString = n.doc_string;
    return node;
  }

  attribute(a: IAttributeProto, where: string): Attribute {
    const type = a.type || legacyAttributeType(a);
    if (a.ref_attr_name) return opaque(a);
    switch (type) {
      case AT.FLOAT:
        return { type: 'float', value: a.f ?? 0 };
      case AT.INT:
        return { type: 'int', value: int64ToNumber(a.i) };
      case AT.STRING:
        return { type: 'string', value: utf8.decode(has(a, 's') ? a.s! : new Uint8Array()) };
      case AT.TENSOR:
        if (!has(a, 't')) throw this.fail(where, 'is a TENSOR attribute without a tensor', 'the file is damaged; re-export it');
        return { type: 'tensor', value: tensorFromProto(a.t!, this.tensorContext(where)) };
      case AT.FLOATS:
        return { type: 'floats', value: [...(a.floats ?? [])] };
      case AT.INTS:
        return { type: 'ints', value: (a.ints ?? []).map(int64ToNumber) };
      case AT.STRINGS:
        return { type: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
      default:
        // Subgraphs, sparse tensors, type protos, tensor lists: kept as protobuf so they write back unchanged.
        return opaque(a);
    }
  }
}

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/** Files from before IR version 3 may leave `type` unset; infer it from the field that is present. */
function legacyAttributeType(a: IAttributeProto): number {
  if (has(a, 'f')) return AT.FLOAT;
  if (has(a, 'i')) return AT.INT;
  if (has(a, 's')) return AT.STRING;
  if (has(a, 't')) return AT.TENSOR;
  if (a.floats?.length) return AT.FLOATS;
  if (a.ints?.length) return AT.INTS;
  if (a.strings?.length) return AT.STRINGS;
  return AT.UNDEFINED;
}

/** An attribute kept as its protobuf message, re-encoded once so it no longer shares the file's buffer. */
function opaque(a: IAttributeProto): Attribute {
  return { type: 'opaque', value: AttributeProto.decode(AttributeProto.encode(a)) };
}

/**
 * Decode an ONNX model. Throws a SlimError (naming `options.file`) on bytes that are not a model, on
 * impossible sizes, and on content slimkit cannot represent (sparse tensors, sequence inputs, complex).
 */
export function decodeModel(bytes: Uint8Array, options: DecodeOptions = {}): Graph {
  if (bytes.length === 0) throw inputError({ ...(options.file ? { file: options.file } : {}), problem: 'is empty', fix: NOT_ONNX });
  const foreign = foreignFormat(bytes);
  if (foreign) throw inputError({ ...(options.file ? { file: options.file } : {}), problem: `is ${foreign.what}, not an ONNX model`, fix: foreign.fix });
  const model = protobufDecode(ModelProto.decode, bytes, options.file, 'ONNX model');
  return new Decoder(options).model(model);
}

const TORCH_EXPORT = 'export it to ONNX in PyTorch: torch.onnx.export(model.eval(), torch.randn(1, 3, H, W), "model.onnx", dynamic_axes={"input": {0: "batch"}}, input_names=["input"])';

/**
 * Formats users hand over for a model that an ONNX parse would only call damaged: PyTorch's zip
 * checkpoints (torch.save since 1.6: a zip holding data.pkl) and pickles, TorchScript archives, Keras
 * HDF5, TensorFlow Lite flatbuffers. A protobuf field tag is never 0x80 or 'PK'-like at byte 0 of an
 * ONNX model (its first field is ir_version, tag 0x08).
 */
function foreignFormat(bytes: Uint8Array): { what: string; fix: string } | undefined {
  const head = Buffer.from(bytes.subarray(0, Math.min(bytes.length, 4096))).toString('latin1');
  if (head.startsWith('PK\x03\x04')) {
    // Entry names: the first entry's at the start, all of them in the central directory at the end.
    const names = head + Buffer.from(bytes.subarray(Math.max(0, bytes.length - 65536))).toString('latin1');
    if (/constants\.pkl|\/code\//.test(names)) return { what: 'a TorchScript archive (torch.jit.save)', fix: TORCH_EXPORT };
    if (/data\.pkl/.test(names)) return { what: 'a PyTorch checkpoint (torch.save)', fix: TORCH_EXPORT };
    return { what: 'a zip archive', fix: 'unpack it, or give the .onnx file itself' };
  }
  if (bytes[0] === 0x80 && bytes[1] !== undefined && bytes[1] >= 2 && bytes[1] <= 5) return { what: 'a Python pickle (a PyTorch checkpoint saved with the legacy format?)', fix: TORCH_EXPORT };
  if (head.startsWith('\x89HDF\r\n\x1a\n')) return { what: 'an HDF5 file (a Keras model?)', fix: 'convert it to ONNX, e.g. with tf2onnx (python -m tf2onnx.convert --keras model.h5 --output model.onnx)' };
  if (head.slice(4, 8) === 'TFL3') return { what: 'a TensorFlow Lite model', fix: 'convert it to ONNX, e.g. with tf2onnx (python -m tf2onnx.convert --tflite model.tflite --output model.onnx)' };
  // slimkit's own files beside a model (engine/checkpoint.ts writes this magic; --log writes JSON lines).
  if (head.startsWith('SLIMCKPT')) return { what: 'a slimkit training checkpoint (--checkpoint-dir)', fix: 'give the model the run wrote (--out, -o); the command that made the checkpoint continues from it with --resume' };
  if (/^\{"time":"[^"]*","event":"/.test(head)) return { what: 'a slimkit training log (--log)', fix: 'give the model the run wrote (--out, -o); slim curves draws the log' };
  const image = sniffImage(bytes.subarray(0, 256));
  if (image) return { what: imageKindText(image), fix: 'give the .onnx model here; images go to --data (a folder of class folders), or to a served model (POST /v1/classify)' };
  // An ONNX file starts with a field tag (0x08): never text. A recipe, a JSON config or notes given as the model.
  if (looksLikeText(bytes.subarray(0, 512))) return { what: 'a text file', fix: 'give the .onnx model itself (the binary file an ONNX exporter writes)' };
  return undefined;
}

/** Printable UTF-8 with tabs and line breaks only. */
function looksLikeText(bytes: Uint8Array): boolean {
  if (bytes.some((b) => b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) return false;
  try {
    // A UTF-8 character cut at the end of the sample is not a reason to call it binary.
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, Math.max(0, bytes.length - 3)));
    return true;
  } catch {
    return false;
  }
}

/**
 * What a binary file is, for a command that wanted something else (a training log): an ONNX model, one
 * of the formats decodeModel names, else undefined.
 */
export function describeBinaryFile(bytes: Uint8Array): string | undefined {
  const foreign = foreignFormat(bytes);
  if (foreign) return foreign.what;
  try {
    decodeModel(bytes);
    return 'an ONNX model';
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

function valueInfoToProto(v: ValueInfo): IValueInfoProto {
  const tensor: NonNullable<NonNullable<IValueInfoProto['type']>['tensor_type']> = { elem_type: onnxDtype(v.dtype) };
  if (v.shape) {
    tensor.shape = {
      dim: v.shape.map((d) => typeof d === 'number' ? { dim_value: toInt64(d) } : UNKNOWN_DIM.test(d) ? {} : { dim_param: d }),
    };
  }
  return { name: v.name, type: { tensor_type: tensor } };
}

function attributeToProto(name: string, a: Attribute): IAttributeProto {
  switch (a.type) {
    case 'float':
      return { name, type: AT.FLOAT, f: a.value };
    case 'int':
      return { name, type: AT.INT, i: toInt64(a.value) };
    case 'string':
      return { name, type: AT.STRING, s: utf8Encoder.encode(a.value) };
    case 'tensor':
      return { name, type: AT.TENSOR, t: tensorToProto(a.value, '') };
    case 'floats':
      return { name, type: AT.FLOATS, floats: [...a.value] };
    case 'ints':
      return { name, type: AT.INTS, ints: a.value.map((v) => toInt64(v)) };
    case 'strings':
      return { name, type: AT.STRINGS, strings: a.value.map((s) => utf8Encoder.encode(s)) };
    case 'opaque':
      return { ...(a.value as IAttributeProto), name };
  }
}

function nodeToProto(n: Node): INodeProto {
  const p: INodeProto = {
    input: [...n.inputs],
    output: [...n.outputs],
    op_type: n.opType,
    attribute: Object.entries(n.attributes).map(([name, a]) => attributeToProto(name, a)),
  };
  if (n.name) p.name = n.name;
  if (n.domain) p.domain = n.domain;
  if (n.docString) p.doc_string = n.docString;
  return p;
}

function graphToProto(graph: Graph, external?: ExternalDataWriter): IModelProto {
  const g: IGraphProto = {
    node: graph.nodes.map(nodeToProto),
    name: graph.name,
    initializer: [...graph.initializers].map(([name, t]): ITensorProto => tensorToProto(t, name, external)),
    input: graph.inputs.map(valueInfoToProto),
    output: graph.outputs.map(valueInfoToProto),
    value_info: [...graph.valueInfo.values()].map(valueInfoToProto),
  };
  const m: IModelProto = {
    ir_version: toInt64(graph.irVersion),
    opset_import: Object.entries(graph.opsets).map(([domain, version]) => ({ domain, version: toInt64(version) })),
    graph: g,
    metadata_props: Object.entries(graph.metadata).map(([key, value]) => ({ key, value })),
  };
  if (graph.producerName) m.producer_name = graph.producerName;
  if (graph.producerVersion) m.producer_version = graph.producerVersion;
  if (graph.docString) m.doc_string = graph.docString;
  if (graph.graphDocString) g.doc_string = graph.graphDocString;
  if (graph.modelVersion) m.model_version = toInt64(graph.modelVersion);
  if (graph.domain) m.domain = graph.domain;
  return m;
}

/** Encode a Graph as ONNX bytes; with `externalData`, large tensors go into a second blob. */
export function encodeModel(graph: Graph, options: EncodeOptions = {}): { model: Uint8Array; external?: Uint8Array } {
  const ext = options.externalData;
  const writer = ext ? new ExternalDataWriter(ext.file, ext.thresholdBytes ?? DEFAULT_EXTERNAL_THRESHOLD) : undefined;
  const model = ModelProto.encode(graphToProto(graph, writer));
  if (model.length > PROTOBUF_LIMIT) {
    throw inputError({
      where: `graph ${quoted(graph.name)}`,
      problem: `encodes to ${model.length} bytes, more than protobuf's 2 GiB limit`,
      fix: 'write it with external data (writeModel(..., { externalData: true }))',
    });
  }
  return writer && writer.byteLength > 0 ? { model, external: writer.finish() } : { model };
}

/** Decode a TensorProto (.pb files in ONNX's test suite). */
export function decodeTensor(bytes: Uint8Array, options: DecodeOptions = {}): Tensor {
  const p = protobufDecode(TensorProto.decode, bytes, options.file, 'ONNX tensor');
  return tensorFromProto(p, { ...options, where: `tensor ${quoted(p.name ?? '')}` });
}

/** Encode a tensor as a TensorProto (raw_data for numbers, string_data for strings). */
export function encodeTensor(t: Tensor, options: { name?: string } = {}): Uint8Array {
  return TensorProto.encode(tensorToProto(t, options.name ?? ''));
}

// ---------------------------------------------------------------------------------------------
// Files

/** What to do about a model path that cannot be read: the file meant, when a neighbour or a bundle's model is close. */
function readFix(path: string, code: string | undefined): string {
  if (code === 'EISDIR') {
    const inside = join(path, 'model.onnx');
    if (existsSync(inside)) return `give the model in it: ${inside}${existsSync(join(path, 'slim.json')) ? ' (a slim deploy bundle)' : ''}`;
    // A slim run folder: its models are models/<stage>.onnx.
    if (existsSync(join(path, 'manifest.json')) && existsSync(join(path, 'models'))) return `it is a slim run folder: give its models, ${join(path, 'models', '*.onnx')} (slim report ${path} shows the run's own bench)`;
    return 'give the path of a model file';
  }
  if (code === 'ENOENT') {
    try {
      const meant = closest(basename(path), readdirSync(dirname(path)).filter((f) => extname(f) === extname(path)));
      if (meant) return `did you mean ${join(dirname(path), meant)}?`;
    } catch {
      // The folder is missing too: nothing to suggest.
    }
  }
  return 'check the path';
}

/** A file system error as a SlimError naming the file and what to do (a full disk, a missing folder, …). */
export function fileError(path: string, e: unknown, action: 'read' | 'write'): SlimError {
  const code = (e as NodeJS.ErrnoException).code;
  const problem = code === 'ENOENT' ? (action === 'read' ? 'does not exist' : 'cannot be written: its folder does not exist')
    : code === 'EISDIR' ? 'is a folder, not a file'
    : code === 'EACCES' || code === 'EPERM' ? `cannot be ${action === 'read' ? 'read' : 'written'}: permission denied`
    : code === 'ERR_FS_FILE_TOO_LARGE' ? 'is larger than 2 GiB, which an ONNX file cannot be without external data'
    : code === 'ENOSPC' ? 'cannot be written: the disk is full'
    : code === 'EDQUOT' ? 'cannot be written: the disk quota is used up'
    : code === 'EROFS' ? 'cannot be written: the file system is read-only'
    : code === 'ENAMETOOLONG' ? 'cannot be written: the name is too long for the file system'
    : code === 'EFBIG' ? 'cannot be written: it would pass the largest file this process may write (ulimit -f) or the file system holds'
    : `cannot be ${action === 'read' ? 'read' : 'written'}: ${(e as Error).message}`;
  const fix = action === 'read' ? readFix(path, code)
    : code === 'ENOSPC' || code === 'EDQUOT' ? 'free space and run again'
    : code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? 'write to a folder you can write in'
    : code === 'ENAMETOOLONG' ? 'give a shorter file name'
    : code === 'EFBIG' ? "raise the limit (ulimit -f unlimited) or write to another file system"
    : 'check the output path and free space';
  return inputError({ file: path, problem, fix });
}

/** The bytes of a file, with file errors as SlimErrors. */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw fileError(path, e, 'read');
  }
}

/** Read an ONNX model; external data is read relative to the model's folder. */
export async function readModel(path: string): Promise<Graph> {
  return decodeModel(await readBytes(path), { file: path, baseDir: dirname(resolve(path)) });
}

/** Read a TensorProto file. */
export async function readTensor(path: string): Promise<Tensor> {
  return decodeTensor(await readBytes(path), { file: path, baseDir: dirname(resolve(path)) });
}

/** Whether a process of this id runs (one we may not signal runs too). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files (or staging folders) in `dir` named `<prefix><pid>[.<hex>].tmp` whose writing process is gone:
 * left by a write killed midway (kill -9, a power cut), they would otherwise pile up, hidden and
 * model-sized, one per crash. `prefix` names this host (HOST_TAG): a process id means nothing elsewhere.
 */
export async function removeOrphanedTemps(dir: string, prefix: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)(\\.[0-9a-f]+)?\\.tmp$`);
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !processRuns(pid)) await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * How the temp files of writes to `path` begin: hidden, named after the file and this host. A long
 * name is shortened (its start and a hash), so the temp name stays within the 255 bytes a file system
 * allows where the file's own name fits (names of 221–255 bytes failed).
 */
export function tempPrefix(path: string): string {
  const name = basename(path);
  const short = Buffer.byteLength(name) > 120 ? `${Buffer.from(name).subarray(0, 96).toString('utf8').replace(/\uFFFD+$/, '')}~${createHash('sha256').update(name).digest('hex').slice(0, 8)}` : name;
  return `.${short}.${HOST_TAG}.`;
}

/**
 * This machine, as it goes into temp file names: a process id means something only where it was given —
 * the host, and on Linux its pid namespace (containers may share a hostname, not their pids).
 */
export const HOST_TAG = [hostname(), pidNamespace()].filter(Boolean).join('-').replace(/[^A-Za-z0-9-]/g, '-') || 'host';

function pidNamespace(): string | undefined {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}

const removedAtExit = new Set<string>();
let removingAtExit = false;

/**
 * `path` (a temp file or staging folder) is removed if the process exits before `done()` is called:
 * Ctrl-C ends a command with process.exit, which skips the `finally` that would have (a trial's
 * interrupted deploy left an empty `.out.….tmp` folder, a QAT a 1 MiB piece of a checkpoint).
 */
export function removeAtExit(path: string): () => void {
  // One listener for the process's life (a set emptied and filled again must not add another each time).
  if (!removingAtExit) process.once('exit', removeLeftovers);
  removingAtExit = true;
  removedAtExit.add(path);
  return () => void removedAtExit.delete(path);
}

function removeLeftovers(): void {
  for (const path of removedAtExit) rmSync(path, { recursive: true, force: true });
  removedAtExit.clear();
}

/**
 * Write `bytes` to `path` so that readers see the old file or the new one, never a partial one:
 * temp file in the same folder, fsync, rename. The temp file is removed on any error, and those of
 * earlier writes to `path` on this host whose process is gone (killed midway) before writing.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await writeFilesAtomic([{ path, bytes }]);
}

/**
 * Several files written as writeFileAtomic writes one, renamed into place in the order given only once
 * every one is on disk: a crash while writing leaves all the old files, and the window in which some are
 * new and some old is that of the renames alone (a model and its external data: the data first).
 */
export async function writeFilesAtomic(files: readonly { path: string; bytes: Uint8Array }[], o: { followLinks?: boolean } = {}): Promise<void> {
  const temps: { path: string; temp: string; given: string; kept: () => void }[] = [];
  const folders = new Set<string>();
  let current = files[0]?.path ?? '';
  try {
    for (const file of files) {
      current = file.path;
      const path = o.followLinks === false ? file.path : linkTarget(file.path);
      // As root a rename replaces anything, /dev/null included: a device, pipe or socket is refused.
      const special = await lstat(path).then(specialFileKind, () => undefined);
      if (special) throw new SlimError({ file: file.path, problem: `is ${special}, not a file: writing renames a new file into its place, which would replace it`, fix: 'give a file path' }, 'usage');
      const prefix = tempPrefix(path);
      const temp = join(dirname(path), `${prefix}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      await removeOrphanedTemps(dirname(path), prefix);
      const handle = await open(temp, 'wx');
      temps.push({ path, temp, given: file.path, kept: removeAtExit(temp) });
      folders.add(dirname(path));
      try {
        await handle.writeFile(file.bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    while (temps.length) {
      const { path, temp, given, kept } = temps[0]!;
      current = given;
      await rename(temp, path);
      kept();
      temps.shift();
    }
  } catch (e) {
    for (const { temp, kept } of temps) {
      await unlink(temp).catch(() => undefined);
      kept();
    }
    throw e instanceof SlimError ? e : fileError(current, e, 'write');
  }
  // Make the renames themselves durable; not every file system lets a folder be opened for this.
  for (const dir of folders) {
    try {
      const handle = await open(dir, 'r');
      await handle.sync().finally(() => handle.close());
    } catch {
      /* best effort */
    }
  }
}

/**
 * Write a Graph as an ONNX file (atomically). With `externalData`, initializers of at least the threshold
 * (default 1 KiB) go to `<file name>.data` beside the model. Returns the bytes written, both files together.
 */
export async function writeModel(graph: Graph, path: string, options: WriteOptions = {}): Promise<{ bytes: number }> {
  const ext = options.externalData;
  const externalFile = `${basename(path)}.data`;
  const encodeOptions: EncodeOptions = ext
    ? { externalData: { file: externalFile, thresholdBytes: ext === true ? DEFAULT_EXTERNAL_THRESHOLD : ext.thresholdBytes } }
    : {};
  const { model, external } = encodeModel(graph, encodeOptions);
  // Both on disk before either replaces a file, then the data first: a model never points at data that
  // is not there yet, and a crash while writing leaves the old pair.
  // With external data a link -o is replaced, not written through: ONNX Runtime finds the data beside
  // the path it is given, which would then be the link's folder, not the model's.
  await writeFilesAtomic([...(external ? [{ path: join(dirname(path), externalFile), bytes: external }] : []), { path, bytes: model }], { followLinks: !external });
  return { bytes: model.length + (external?.length ?? 0) };
}
