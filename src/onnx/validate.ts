/**
 * Is this Graph something slimkit can work on? Structural checks with one clear error each, then
 * shape inference over the op registry (which names unsupported ops and bad node inputs).
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { inputError, SlimError } from '../errors.js';
import { isFloat } from './dtype.js';
import type { Graph } from './graph.js';
import { decodeModel, readBytes } from './io.js';
import { inferShapes, unsupportedOpError, type InferenceResult } from './shape-inference.js';
import { topologicalOrder } from './topology.js';
import { opDefFor } from '../ops/registry.js';
import { float16BitsToNumber, bfloat16BitsToNumber, type Tensor } from './tensor.js';
import { quoted } from './tensor-proto.js';

/** ai.onnx opset versions slimkit's op definitions follow. */
export const SUPPORTED_OPSETS = { min: 7, max: 21 } as const;

export interface ValidateOptions {
  /** Named in error messages. */
  file?: string;
}

/** Index of the first NaN or ±Inf in a float tensor, and how many there are; undefined when all are finite. */
/** Values of a float tensor that fail `isBad` (default: not finite), by first index and count. */
export function nonFinite(t: Tensor, isBad: (v: number) => boolean = (v) => !Number.isFinite(v)): { first: number; count: number } | undefined {
  if (!isFloat(t.dtype)) return undefined;
  const data = t.data as Float32Array | Float64Array | Uint16Array;
  const decode = t.dtype === 'float16' ? float16BitsToNumber : t.dtype === 'bfloat16' ? bfloat16BitsToNumber : undefined;
  let first = -1;
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    const v = decode ? decode(data[i]!) : data[i]!;
    if (isBad(v)) {
      if (first < 0) first = i;
      count++;
    }
  }
  return count > 0 ? { first, count } : undefined;
}

/**
 * Largest weight magnitude slimkit accepts. Trained networks stay many orders of magnitude below it;
 * a flipped exponent bit or an overwritten range in a file lands far above it (ONNX has no checksum,
 * so this is the only trace such damage leaves).
 */
export const MAX_PLAUSIBLE_WEIGHT = 1e15;

/** Index and value of the first float element above MAX_PLAUSIBLE_WEIGHT in magnitude, if any. */
export function implausibleValue(t: Tensor): { index: number; value: number } | undefined {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') return undefined;
  const data = t.data as Float32Array | Float64Array;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v > MAX_PLAUSIBLE_WEIGHT || v < -MAX_PLAUSIBLE_WEIGHT) return { index: i, value: v };
  }
  return undefined;
}

function checkOpset(graph: Graph, fail: (where: string | undefined, problem: string, fix: string) => SlimError): void {
  const { min, max } = SUPPORTED_OPSETS;
  const version = graph.opsets[''];
  if (version === undefined) {
    const others = Object.keys(graph.opsets).map((d) => quoted(d)).join(', ');
    throw fail(undefined, `imports no opset for the default ONNX domain (ai.onnx)${others ? `, only ${others}` : ''}`,
      `slimkit runs models built from standard ONNX ops, opsets ${min}–${max}`);
  }
  if (!Number.isInteger(version) || version < min || version > max) {
    throw fail(undefined, `uses ONNX opset ${version}; slimkit supports opsets ${min}–${max}`,
      `convert it (python -m onnx.version_converter, or re-export with opset_version=17)`);
  }
}

/**
 * Check a decoded Graph and infer every value's type. Throws a SlimError naming the file and the node,
 * tensor or value for: no outputs, an output nothing produces, a missing or unsupported default opset,
 * duplicate producers, dangling inputs, cycles, unsupported ops, and NaN/Inf or implausibly large values
 * in float initializers.
 */
export function validateGraph(graph: Graph, options: ValidateOptions = {}): InferenceResult {
  checkStructure(graph, options);
  return inferShapes(graph, options.file ? { file: options.file } : {});
}

/** validateGraph's checks that need no op definitions: everything but shape inference. */
function checkStructure(graph: Graph, options: ValidateOptions): void {
  const fail = (where: string | undefined, problem: string, fix: string): SlimError =>
    inputError({ ...(options.file ? { file: options.file } : {}), ...(where ? { where } : {}), problem, fix });

  if (graph.outputs.length === 0) throw fail(undefined, 'has no outputs', 're-export the model with its outputs named');
  checkOpset(graph, fail);

  const available = new Set<string>(graph.initializers.keys());
  for (const v of graph.inputs) available.add(v.name);
  for (const node of graph.nodes) for (const out of node.outputs) if (out) available.add(out);
  for (const out of graph.outputs) {
    if (!available.has(out.name)) {
      throw fail(`graph output ${quoted(out.name)}`, 'is not produced by any node, graph input or initializer',
        'the file is incomplete or was edited by hand; re-export it');
    }
  }

  for (const [name, t] of graph.initializers) {
    const bad = nonFinite(t);
    // Inf and huge scalars are bounds and sentinels (Clip's max, a fill value of -3.4e38); NaN never is.
    const scalar = t.data.length <= 1;
    if (bad && (!scalar || nonFinite(t, Number.isNaN))) {
      throw fail(`initializer ${quoted(name)}`,
        `holds ${bad.count} non-finite value${bad.count > 1 ? 's' : ''} (NaN or Inf; first at element ${bad.first})`,
        'the weights are damaged or training diverged; use a healthy checkpoint');
    }
    const huge = scalar ? undefined : implausibleValue(t);
    if (huge) {
      throw fail(`initializer ${quoted(name)}`,
        `holds ${huge.value.toExponential(2)} at element ${huge.index}, far beyond any trained weight (|w| > ${MAX_PLAUSIBLE_WEIGHT.toExponential(0)})`,
        'the file is probably damaged; re-download or re-export it');
    }
  }
}

export interface LoadedModel {
  graph: Graph;
  facts: InferenceResult;
  /** The .onnx file's bytes. */
  bytes: Uint8Array;
  /** External data files the weights were read from (resolved paths; empty for a self-contained model). */
  externalFiles: string[];
  /** Bytes on disk: the .onnx file plus its external data files. */
  sizeBytes: number;
}

/** Read, decode and validate a model file: the one entry point of the commands that transform models. */
export async function loadModel(path: string): Promise<LoadedModel> {
  const { facts, unknownOps, ...read } = await loadModelForRuntime(path);
  // Pruning and training need every op's definition, types stored in the file or not (quantize measures
  // the others' with ONNX Runtime and leaves them float: runtime/opaque-types.ts).
  const undefinedOp = read.graph.nodes.find((node) => !opDefFor(node));
  if (undefinedOp) throw unsupportedOpError(undefinedOp, path, unknownOps);
  return { ...read, facts: facts ?? inferShapes(read.graph, { file: path }) };
}

export interface RuntimeModel extends Omit<LoadedModel, 'facts'> {
  /** Types, shapes and MACs; undefined when the model has ops slimkit has no definition for. */
  facts: InferenceResult | undefined;
  /** Those ops ('DepthToSpace', 'com.microsoft.FusedConv'), sorted; empty when slimkit knows them all. */
  unknownOps: string[];
}

/**
 * loadModel for commands that only hand the model to ONNX Runtime (eval, bench, info, deploy): a model
 * with ops slimkit has no definition for still loads, after every check that needs none; what needs
 * them (shapes, MACs) is left out and `unknownOps` says why.
 */
export async function loadModelForRuntime(path: string, o: { inspectOnly?: boolean } = {}): Promise<RuntimeModel> {
  const bytes = await readBytes(path);
  const externalFiles = new Set<string>();
  const graph = decodeModel(bytes, { file: path, baseDir: dirname(resolve(path)), externalFiles });
  checkStructure(graph, { file: path });
  // slim info shows such a model (with this as a warning); every other command would compute with it.
  const training = trainingModeProblem(graph);
  if (training && !o.inspectOnly) throw inputError({ file: path, problem: training, fix: TRAINING_MODE_FIX });
  const unknown = unknownOps(graph);
  if (unknown.length > 0) {
    try {
      topologicalOrder(graph); // cycles and dangling inputs are still refused
    } catch (e) {
      throw e instanceof SlimError ? e.inFile(path) : e;
    }
  }
  const facts = unknown.length === 0 ? inferShapes(graph, { file: path }) : undefined;
  let sizeBytes = bytes.length;
  for (const f of externalFiles) sizeBytes += (await stat(f)).size;
  return { graph, facts, unknownOps: unknown, bytes, externalFiles: [...externalFiles], sizeBytes };
}

export const TRAINING_MODE_FIX = 're-export it in eval mode: model.eval() before torch.onnx.export, or torch.onnx.export(..., training=torch.onnx.TrainingMode.EVAL)';

/**
 * Nodes exported in training mode (torch.onnx.export(..., training=TrainingMode.TRAINING)), as one
 * problem: a BatchNormalization that normalizes by each batch's own statistics (training_mode=1, or its
 * statistics outputs; a trial's logits moved from −0.261 to −0.284 when the image came in a batch of 3)
 * and a Dropout told to drop (a constant training_mode of true). Undefined for an inference model.
 */
export function trainingModeProblem(graph: Graph): string | undefined {
  const isTrue = (name: string | undefined): boolean => {
    const t = name ? graph.initializers.get(name) : undefined;
    return t !== undefined && t.data.length === 1 && Number(t.data[0]) !== 0;
  };
  const batchNorms = graph.nodes.filter((n) => n.opType === 'BatchNormalization' && (n.outputs.filter(Boolean).length > 1 || (n.attributes['training_mode']?.type === 'int' && n.attributes['training_mode'].value !== 0)));
  const dropouts = graph.nodes.filter((n) => n.opType === 'Dropout' && isTrue(n.inputs[2]));
  if (batchNorms.length + dropouts.length === 0) return undefined;
  const named = (nodes: typeof graph.nodes, what: string, why: string): string[] => (nodes.length ? [`${nodes.length} ${what} (e.g. ${quoted(nodes[0]!.name)}) ${why}`] : []);
  return `was exported in training mode: ${[...named(batchNorms, 'BatchNormalization(s)', "normalize by each batch's own statistics, so a prediction depends on the other images in its batch"), ...named(dropouts, 'Dropout(s)', 'drop activations at random')].join('; ')}`;
}

/** Op types of the graph without a definition in slimkit's registry, domain-prefixed outside ai.onnx. */
export function unknownOps(graph: Graph): string[] {
  const unknown = new Set<string>();
  for (const node of graph.nodes) {
    if (opDefFor(node)) continue;
    unknown.add(node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType);
  }
  return [...unknown].sort();
}
