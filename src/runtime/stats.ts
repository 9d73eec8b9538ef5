/**
 * Static facts about a model for `slim info` and `slim bench`: size, gzip size, learned parameters,
 * MACs, op counts. No ORT needed.
 */
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { constantValue } from '../passes/constants.js';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import type { DType } from '../onnx/dtype.js';
import { attr, dataInputs, GraphIndex, type Graph, type Node, type ValueInfo } from '../onnx/graph.js';
import { isGroupNormCore } from '../ops/instance-normalization.js';
import { learnedOperand } from '../ops/shared/learned.js';
import { hasFreeImageSize, pinImageSize } from '../onnx/image-input.js';
import { encodeModel } from '../onnx/io.js';
import { byteLength, numel, type Tensor } from '../onnx/tensor.js';
import { inferShapes, type InferenceResult } from '../onnx/shape-inference.js';
import { unpadConvInputChannels } from '../compress/quantize/pad-channels.js';
import { RESHAPING_OPS } from '../passes/untie-weights.js';
import { unknownOps, type LoadedModel, type RuntimeModel } from '../onnx/validate.js';

export interface ModelStats {
  /** Bytes on disk: the .onnx file plus its external data files (the encoded graph when no files are given). */
  sizeBytes: number;
  /** Of those, the bytes in external data files (0 for a self-contained model). */
  externalDataBytes: number;
  /** Each file after gzip at level 9, summed: what a download of the model costs. */
  gzipBytes: number;
  /**
   * Elements of learned tensors (LEARNED_INPUTS, and an Add's or Mul's by learnedOperand); quantized
   * weights count once, scales do not; a GroupNorm's fixed 1s and 0s are none. PyTorch's sum(p.numel()).
   */
  params: number;
  /** Those whose value is not zero (for quantized weights: whose quantized value ≠ its zero point). */
  nonzeroParams: number;
  /**
   * Multiply-accumulates of one image's forward pass (a fixed batch of N is divided by N); null when the
   * input's height and width are free and no image size is known (see macsPerImage).
   */
  macs: number | null;
  /**
   * Ops slimkit has no definition for (ONNX Runtime runs them). Their MACs are never counted: `macs`
   * is the rest's when their output shapes were measured (runtime/opaque-types.ts withOpaqueFacts), null otherwise.
   */
  unknownOps: string[];
  /** Node count per op type; ops outside ai.onnx are prefixed with their domain. */
  opHistogram: Record<string, number>;
  /** Bytes of every initializer, by element type. */
  weightDtypes: Partial<Record<DType, number>>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/**
 * A learned input of an op: its slot; for quantized slots (integer tensors count too) the slot of the
 * zero point and the axis a 1-D zero point runs along (a weight's output channels, a MatMul B's columns).
 */
interface LearnedInput {
  slot: number;
  quantized?: true;
  zeroPoint?: number;
  axis?: number;
}

/**
 * Which inputs of an op hold learned values, when they are initializers. Chosen by role, not by name:
 * Conv/Gemm weight and bias, BatchNormalization scale and bias (running mean/var are statistics),
 * either MatMul operand that is constant, the stored tensor of a DequantizeLinear / QuantizeLinear and
 * the weights of ORT's integer ops — never scales or zero points. Add and Mul are decided by
 * learnedOperand (src/ops/shared/learned.ts), as the engine trains them.
 */
const LEARNED_INPUTS: Readonly<Record<string, readonly LearnedInput[]>> = {
  Conv: [{ slot: 1 }, { slot: 2 }],
  ConvTranspose: [{ slot: 1 }, { slot: 2 }],
  Gemm: [{ slot: 1 }, { slot: 2 }],
  MatMul: [{ slot: 0 }, { slot: 1 }],
  BatchNormalization: [{ slot: 1 }, { slot: 2 }],
  InstanceNormalization: [{ slot: 1 }, { slot: 2 }],
  LayerNormalization: [{ slot: 1 }, { slot: 2 }],
  GroupNormalization: [{ slot: 1 }, { slot: 2 }],
  PRelu: [{ slot: 1 }],
  QuantizeLinear: [{ slot: 0 }],
  DequantizeLinear: [{ slot: 0, quantized: true, zeroPoint: 2 }],
  ConvInteger: [{ slot: 1, quantized: true, zeroPoint: 3, axis: 0 }],
  MatMulInteger: [{ slot: 0, quantized: true, zeroPoint: 2, axis: 0 }, { slot: 1, quantized: true, zeroPoint: 3, axis: -1 }],
  QLinearConv: [{ slot: 3, quantized: true, zeroPoint: 5, axis: 0 }, { slot: 8, quantized: true }],
  QLinearMatMul: [{ slot: 0, quantized: true, zeroPoint: 2, axis: 0 }, { slot: 3, quantized: true, zeroPoint: 5, axis: -1 }],
};

/** The model's files: the .onnx bytes, and the plain and gzipped sizes of its external data files. */
export interface ModelFiles {
  model: Uint8Array;
  external?: { bytes: number; gzipBytes: number };
}

/** Stats of a model loaded from disk, its external data files counted. */
export async function loadedModelStats(loaded: LoadedModel | RuntimeModel, imageSize?: readonly [number, number]): Promise<ModelStats> {
  // loadModel measured the files on disk already; only their gzip sizes are new.
  const external = { bytes: loaded.sizeBytes - loaded.bytes.length, gzipBytes: 0 };
  for (const file of loaded.externalFiles) external.gzipBytes += await gzipSizeOfFile(file);
  return modelStats(loaded.graph, loaded.facts, { model: loaded.bytes, external }, imageSize);
}

/** Bytes of a file after gzip at level 9, streamed: external data files may be larger than a Buffer can be. */
async function gzipSizeOfFile(file: string): Promise<number> {
  let n = 0;
  const count = new Writable({
    write(chunk: Buffer, _encoding, done) {
      n += chunk.length;
      done();
    },
  });
  await pipeline(createReadStream(file), createGzip({ level: 9 }), count);
  return n;
}

/**
 * MACs of one image of an N×C×H×W input. Shape inference counts a symbolic dim as 1, which is right
 * for the batch and wrong for a free height or width: those are pinned to `imageSize` (the caller's
 * flag or the model's metadata) and the shapes inferred again; without a size the count is unknown
 * (null). A fixed batch of N images is divided by N. Inputs of another rank are counted as they are.
 */
export function macsPerImage(graph: Graph, facts: InferenceResult | undefined, imageSize?: readonly [number, number]): number | null {
  if (!facts) return null;
  const shape = dataInputs(graph)[0]?.shape;
  if (!shape || shape.length !== 4) return facts.totalMacs;
  let total = facts.totalMacs;
  if (shape.slice(1).some((d) => typeof d !== 'number')) {
    // Only H and W can be pinned from an image size; a free channel count leaves the count unknown.
    if (!imageSize || !hasFreeImageSize(graph)) return null;
    total = inferShapes(pinImageSize(graph, imageSize)).totalMacs;
  }
  const batch = shape[0];
  return typeof batch === 'number' && batch > 1 ? total / batch : total;
}

/** `facts` is undefined for a model with ops slimkit has no definition for whose types were not measured (loadModelForRuntime). */
export function modelStats(graph: Graph, facts: InferenceResult | undefined, files?: ModelFiles, imageSize?: readonly [number, number]): ModelStats {
  const model = files?.model ?? encodeModel(graph).model;
  const externalDataBytes = files?.external?.bytes ?? 0;
  const opHistogram: Record<string, number> = {};
  for (const node of graph.nodes) {
    const key = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
    opHistogram[key] = (opHistogram[key] ?? 0) + 1;
  }
  const weightDtypes: Partial<Record<DType, number>> = {};
  for (const t of graph.initializers.values()) weightDtypes[t.dtype] = (weightDtypes[t.dtype] ?? 0) + byteLength(t);

  // Params and MACs are the network's: the channels an int8 layout pads on (AMX machines) are not counted.
  const network = unpadConvInputChannels(graph);
  const networkFacts = network !== graph && facts ? inferShapes(network) : facts;
  const { params, nonzeroParams } = countParams(network);
  return {
    sizeBytes: model.byteLength + externalDataBytes,
    externalDataBytes,
    gzipBytes: gzipSync(model, { level: 9 }).byteLength + (files?.external?.gzipBytes ?? 0),
    params,
    nonzeroParams,
    macs: macsPerImage(network, networkFacts, imageSize),
    unknownOps: unknownOps(graph),
    opHistogram,
    weightDtypes,
    inputs: dataInputs(graph).map(copyInfo),
    outputs: graph.outputs.map((o) => copyInfo(o.shape || !facts ? o : { ...o, ...facts.types.get(o.name) })),
  };
}

function copyInfo(v: ValueInfo): ValueInfo {
  return { name: v.name, dtype: v.dtype, ...(v.shape ? { shape: [...v.shape] } : {}) };
}

/** Ops whose stored inputs are learned weights wherever they are kept (a Constant node included; not InstanceNormalization, whose 1s and 0s torch writes so for GroupNorm). */
const LAYERS_WITH_WEIGHTS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization', 'LayerNormalization', 'PRelu']);

function countParams(graph: Graph): { params: number; nonzeroParams: number } {
  const index = new GraphIndex(graph);
  const producers = index.producer;
  const counted = new Set<string>();
  let params = 0;
  let nonzeroParams = 0;
  for (const node of graph.nodes) {
    // A GroupNorm's fixed 1s and 0s are no parameters (its γ and β, the Mul and Add after, are).
    if (isGroupNormCore(node, graph, index)) continue;
    for (const role of learnedInputs(node, producers, graph)) {
      // Constant nodes hold an exporter's literals (HardSwish's 3, a scale): weights only for the layers that have them.
      const stored = storedWeight(node.inputs[role.slot], graph, producers, { constants: LAYERS_WITH_WEIGHTS.has(node.opType) });
      if (!stored || counted.has(stored.key)) continue;
      const { key: name, tensor: t } = stored;
      const float = isFloatTensor(t);
      // Integer tensors are parameters only in quantized slots (int32 biases included).
      if (!float && !role.quantized) continue;
      // A quantized scalar an Add or Mul reads (HardSwish's 3) is no parameter, as its float original is not.
      if (node.opType === 'DequantizeLinear' && numel(t.dims) === 1 && index.consumersOf(node.outputs[0] ?? '').every((r) => r.opType === 'Add' || r.opType === 'Mul')) continue;
      counted.add(name);
      params += numel(t.dims);
      nonzeroParams += float ? nonzeroFloat(t) : nonzeroQuantized(node, role, t, graph);
    }
  }
  return { params, nonzeroParams };
}

/**
 * The initializer behind a weight input and the name it counts under. Through a Cast (fp16-weights
 * models store weights as float16) it is the stored tensor, counted once; through an Identity (torch.onnx
 * stores parameters equal at export once, untie-weights.ts) it is a parameter of its own, as PyTorch counts it.
 */
function storedWeight(name: string | undefined, graph: Graph, producers: ReadonlyMap<string, Node>, o: { constants?: boolean } = {}): { key: string; tensor: Tensor } | undefined {
  let key: string | undefined;
  // A short chain: fp16-weights conversion puts a Cast behind torch's Identity.
  for (let value = name, hops = 0; value && hops < 4; hops++) {
    const tensor = graph.initializers.get(value);
    if (tensor) return { key: key ?? value, tensor };
    const producer = producers.get(value);
    if (!producer) return undefined;
    // Weights some exporters write as Constant nodes (pruning turns them into initializers: counted alike).
    if (producer.opType === 'Constant' && o.constants) {
      try {
        return { key: key ?? value, tensor: constantValue(producer) };
      } catch {
        return undefined; // a sparse constant: not counted, as before
      }
    }
    if (producer.opType === 'Identity') key ??= value;
    // Cast (fp16 weights) and the reshapes torch.onnx reads a parameter through without constant
    // folding (PReLU's Unsqueeze(a1.weight)): the stored tensor, counted once under its own name.
    else if (producer.opType !== 'Cast' && !RESHAPING_OPS.has(producer.opType)) return undefined;
    value = producer.inputs[0];
  }
  return undefined;
}

/** Learned inputs of `node`; an Add or Mul's as the engine trains them (learnedOperand: a layer's bias, GroupNorm's γ and β, a layer scale). */
function learnedInputs(node: Node, producers: ReadonlyMap<string, Node>, graph: Graph): readonly LearnedInput[] {
  const domain = node.domain === 'ai.onnx' ? '' : node.domain;
  if (domain !== '' && domain !== 'com.microsoft') return [];
  if (node.opType === 'Add' || node.opType === 'Mul') {
    const lookup = { producer: (v: string) => producers.get(v), stored: (v: string) => storedWeight(v, graph, producers)?.tensor };
    return [0, 1].filter((i) => {
      const stored = lookup.stored(node.inputs[i] ?? '');
      return stored !== undefined && isFloatTensor(stored) && learnedOperand(node, i, lookup);
    }).map((slot) => ({ slot }));
  }
  // Einsum contracts its operands as MatMul does: a stored float operand is a weight (torch.einsum(x, W)).
  if (node.opType === 'Einsum') return node.inputs.map((_, slot) => ({ slot }));
  return LEARNED_INPUTS[node.opType] ?? [];
}

function isFloatTensor(t: Tensor): boolean {
  return t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'float64' || t.dtype === 'bfloat16';
}

function nonzeroFloat(t: Tensor): number {
  let n = 0;
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') {
    // Raw bits: ±0 are the only encodings with every bit but the sign clear.
    for (const b of t.data as Uint16Array) if ((b & 0x7fff) !== 0) n++;
  } else {
    for (const v of t.data as Float32Array) if (v !== 0) n++;
  }
  return n;
}

/**
 * Elements of an integer tensor that dequantize to a non-zero value (x ≠ its zero point), with the
 * zero point per tensor, per axis or per block (DequantizeLinear's opset-21 block_size).
 */
function nonzeroQuantized(node: Node, role: LearnedInput, x: Tensor, graph: Graph): number {
  const values = x.data as ArrayLike<number | bigint>;
  const zpName = role.zeroPoint === undefined ? undefined : node.inputs[role.zeroPoint];
  const zp = zpName ? graph.initializers.get(zpName) : undefined;
  const zpValues = zp?.data as ArrayLike<number | bigint> | undefined;
  let n = 0;
  if (!zp || !zpValues || numel(zp.dims) === 1) {
    const z = Number(zpValues?.[0] ?? 0);
    for (let i = 0; i < values.length; i++) if (Number(values[i]) !== z) n++;
    return n;
  }
  const rank = x.dims.length;
  const declared = node.opType === 'DequantizeLinear' ? (attr(node, 'axis', 'int') ?? 1) : (role.axis ?? 0);
  const axis = declared < 0 ? declared + rank : declared;
  const axisLen = x.dims[axis] ?? 1;
  const inner = numel(x.dims.slice(axis + 1));
  const blocked = zp.dims.length === rank && rank > 1;
  const block = blocked ? (attr(node, 'block_size', 'int') ?? 1) : 1;
  const zpAxisLen = blocked ? zp.dims[axis]! : axisLen;
  for (let i = 0; i < values.length; i++) {
    const a = Math.floor(i / inner) % axisLen;
    const outer = Math.floor(i / (inner * axisLen));
    const zi = blocked ? (outer * zpAxisLen + Math.floor(a / block)) * inner + (i % inner) : a;
    if (Number(values[i]) !== Number(zpValues[zi])) n++;
  }
  return n;
}
