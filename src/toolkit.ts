/**
 * Task-level calls for library users: what `slim eval`, `slim quantize` and `slim info` do, without the
 * terminal. Each takes a Graph (or an .onnx file) and images, fills in the commands' defaults, and
 * returns numbers or a Graph; nothing is printed. The commands compose the same pieces with their flags.
 */
import { dataInputs, madeBySlimkit, type Graph } from './onnx/graph.js';
import { encodeModel, readModel } from './onnx/io.js';
import { requireOneInput } from './onnx/image-input.js';
import { imageMixingNodes } from './onnx/image-mixing.js';
import { inferShapes, type InferenceResult } from './onnx/shape-inference.js';
import { loadModelForRuntime, unknownOps, validateGraph } from './onnx/validate.js';
import { inputError, SlimError, usageError } from './errors.js';
import { labelledForModel, labelledSource, modelInputSize, normalizationFor, recordedClasses, withGivenNormalization } from './data/model-data.js';
import { checkResize, type ResizeMode } from './data/image-folder.js';
import { resizeMetadata } from './zoo/metadata.js';
import type { ImageSource } from './data/stream.js';
import { forBatches } from './data/model-batches.js';
import { checkImageSet, checkNormalization, type ImageSet, type Normalization } from './data/types.js';
import { defaultThreads, openSession } from './runtime/ort.js';
import { withMeasuredOpaqueTypes, withOpaqueFacts } from './runtime/opaque-types.js';
import { checkOptionNames, type OptionNames } from './util/option-names.js';
import { evaluate, type EvaluateResult } from './runtime/evaluate.js';
import { loadedModelStats, modelStats, type ModelStats } from './runtime/stats.js';
import {
  autoConvLayout,
  CALIBRATION_METHODS,
  calibrateImages,
  DEFAULT_STATIC,
  INT8_SYMMETRIC,
  layoutChoice,
  saturationNote,
  scoresByMethod,
  UINT8_ASYMMETRIC,
  type CalibrationMethod,
  type CpuChoice,
  type FloatNode,
  type StaticOptions,
} from './compress/quantize/index.js';

/** A model as a Graph, or the path of an .onnx file. */
export type ModelSource = Graph | string;

/** The graph, and what messages call it: its file, else its graph name said as one (torch.onnx names every graph 'torch_jit'). */
async function graphOf(model: ModelSource): Promise<{ graph: Graph; name: string }> {
  return typeof model === 'string' ? { graph: await readModel(model), name: model } : { graph: model, name: model.name ? `the model (graph '${model.name}')` : 'the model' };
}

export interface EvaluateModelOptions {
  /** Pixel → input mapping; default: what the model records (slimkit.mean / slimkit.std), else CIFAR-10's. */
  normalization?: Normalization;
  /** Images per run; default 256. */
  batchSize?: number;
  /** Evaluate only the first `limit` images. */
  limit?: number;
  /** ONNX Runtime intra-op threads; default: the cores this process may use. */
  threads?: number;
  /** Also return each image's predicted class and true class (EvaluateResult.predictions, .labels). */
  keepPredictions?: boolean;
  onProgress?(done: number, total: number): void;
}

/**
 * Top-1, top-5, per-class accuracy and the confusion matrix of a model on labelled images, run by ONNX
 * Runtime as `slim eval` runs it: images are matched to the model's outputs by the class names it
 * records (an error names the classes that differ), and a model that mixes the images of a batch is fed
 * one image per run.
 */
const EVALUATE_OPTIONS = { normalization: true, batchSize: true, limit: true, threads: true, keepPredictions: true, onProgress: true } as const satisfies OptionNames<EvaluateModelOptions>;

export async function evaluateModel(model: ModelSource, images: ImageSet | ImageSource, options: EvaluateModelOptions = {}): Promise<EvaluateResult> {
  checkOptionNames('evaluateModel', options, EVALUATE_OPTIONS);
  const { graph, name } = await graphOf(model);
  if ('chunks' in images) {
    if (images.count === 0) throw inputError({ where: `evaluation images (${images.name})`, problem: 'there are none', fix: 'give at least one evaluation image' });
  } else requireImages(images, 'evaluation');
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit >= 1)) throw usageError(`limit must be a whole number ≥ 1, got ${options.limit}`, 'leave limit out to evaluate every image');
  // threads: 0 ran on the default count, as if left out.
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) throw usageError(`threads must be a whole number ≥ 1, got ${options.threads}`, 'leave threads out for the cores this process may use');
  if (options.normalization) checkNormalization(options.normalization);
  const classes = recordedClasses(graph, name);
  const set = 'chunks' in images ? labelledSource(images, classes, { quiet: true }) : labelledForModel(images, classes, { quiet: true });
  const session = await openSession(encodeModel(graph).model, { label: name, ...(options.threads ? { threads: options.threads } : {}) });
  try {
    return await evaluate(session, set, {
      normalization: options.normalization ?? normalizationFor(graph),
      oneImagePerRun: imageMixingNodes(graph).length > 0,
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.keepPredictions ? { keepPredictions: true } : {}),
    });
  } finally {
    await session.close();
  }
}

export interface QuantizeModelOptions {
  /** Calibration images drawn at random from the set (default 512, as `slim quantize --samples`). */
  samples?: number;
  /** Seed of that draw (default 0). */
  seed?: number;
  /**
   * How activation ranges are chosen; 'auto' (default) builds all four from one calibration and keeps
   * the one whose outputs match fp32 best on up to 256 images the sample left out.
   */
  method?: CalibrationMethod | 'auto';
  /** Percentile of the 'percentile' method (default 99.999). */
  percentile?: number;
  /** One weight scale per output channel (default true). */
  perChannel?: boolean;
  /** 'uint8' asymmetric activations (default) or 'int8' symmetric. */
  activations?: 'uint8' | 'int8';
  /** 7-bit weights and activations for x64 CPUs without VNNI (default false). */
  reduceRange?: boolean;
  /** Node names to keep float. */
  exclude?: readonly string[];
  /** Keep the first / last weighted layer float (default false). */
  keepFirst?: boolean;
  keepLast?: boolean;
  /** Remove the output shift weight rounding causes (default true). */
  biasCorrection?: boolean;
  /** Cross-layer equalization before calibration (default false). */
  equalize?: boolean;
  /** The CPU the int8 Convs are laid out for; 'auto' (default) measures this machine's kernels when it has AMX. */
  cpu?: CpuChoice;
  /** Default: what the model records, else CIFAR-10's statistics. */
  normalization?: Normalization;
  /**
   * How the calibration photos were brought to the model's input (openImageFolder's `resize`): the
   * int8 model records it (slimkit.resize), so slim eval, bench and deploy resize photos the same way.
   */
  resize?: ResizeMode;
  /** ONNX Runtime threads for calibration and the layout measurement; default: the cores this process may use. */
  threads?: number;
  /** Images calibrated so far. */
  onProgress?(images: number): void;
}

export interface QuantizeModelResult {
  /** The int8 QDQ model: it takes what the input model took (batch, pixels, score shape). */
  graph: Graph;
  /**
   * The float graph the int8 weights were quantized from (BatchNorm folded, biases corrected): pass it as
   * `float` to quantizationAwareTraining, whose latent weights then start from it.
   */
  float: Graph;
  /** The float model as prepared, before bias correction: what the int8 model stands in for (QAT's teacher: `teacher: { graph: reference }`). */
  reference: Graph;
  /** The range method used (the one 'auto' chose). */
  method: CalibrationMethod;
  /** Images calibrated on. */
  calibrationImages: number;
  /** Output fidelity (dB) of each method 'auto' compared, on `heldOutImages` images. */
  methodScores?: Record<string, number>;
  heldOutImages?: number;
  /** Nodes quantized, and those left float with the reason. */
  quantizedNodes: number;
  floatNodes: FloatNode[];
  /** Placement and calibration warnings, and on a CPU whose int8 sums saturate (x64 without VNNI) a note that scores measured here understate the model. */
  warnings: string[];
  calibrationSeconds: number;
}

/** A resize to record: one slimkit can read back, and not smaller than the model's input. */
function checkResizeOption(resize: ResizeMode, size: [number, number] | undefined): void {
  const valid = resize === 'shorter-side' || resize === 'stretch' || (typeof resize === 'object' && Number.isInteger(resize.shorterSide) && resize.shorterSide > 0);
  if (!valid) throw usageError(`resize must be 'shorter-side', 'stretch' or { shorterSide: N } with N a whole number ≥ 1, got ${JSON.stringify(resize)}`);
  if (size) checkResize(resize, size);
}

/** The quantizer's settings for `options`, the commands' defaults filled in (slim quantize maps its flags here). */
export function staticOptionsOf(options: Omit<QuantizeModelOptions, 'samples' | 'seed' | 'normalization' | 'resize' | 'threads' | 'onProgress'>): StaticOptions {
  const reduceRange = options.reduceRange ?? false;
  const method = options.method ?? 'auto';
  if (method !== 'auto' && !CALIBRATION_METHODS.includes(method)) throw usageError(`method must be one of ${[...CALIBRATION_METHODS, 'auto'].join(', ')}, got '${String(method)}'`);
  if (options.percentile !== undefined && !(options.percentile > 0 && options.percentile <= 100)) throw usageError(`percentile must be in (0, 100], got ${options.percentile}`);
  return {
    ...DEFAULT_STATIC,
    activations: options.activations === 'int8' ? INT8_SYMMETRIC : UINT8_ASYMMETRIC,
    perChannel: options.perChannel ?? true,
    reduceRange,
    cpu: layoutChoice(options.cpu ?? 'auto', reduceRange),
    exclude: options.exclude ?? [],
    keepFirst: options.keepFirst ?? false,
    keepLast: options.keepLast ?? false,
    biasCorrection: options.biasCorrection ?? DEFAULT_STATIC.biasCorrection,
    equalize: options.equalize ?? false,
    calibration: {
      ...DEFAULT_STATIC.calibration,
      ...(method !== 'auto' ? { method } : {}),
      ...(options.percentile !== undefined ? { percentile: options.percentile } : {}),
    },
  };
}

/**
 * Static int8 post-training quantization as `slim quantize --calib` does it (without --max-drop): QDQ
 * nodes placed for ONNX Runtime's integer kernels, ranges calibrated on `calibration`, per-channel
 * weights, bias correction, and the Conv layout chosen for this CPU.
 */
const QUANTIZE_OPTIONS = {
  samples: true, seed: true, method: true, percentile: true, perChannel: true, activations: true, reduceRange: true, exclude: true,
  keepFirst: true, keepLast: true, biasCorrection: true, equalize: true, cpu: true, normalization: true, resize: true, threads: true, onProgress: true,
} as const satisfies OptionNames<QuantizeModelOptions>;

export async function quantizeModel(model: ModelSource, calibration: ImageSet, options: QuantizeModelOptions = {}): Promise<QuantizeModelResult> {
  checkOptionNames('quantizeModel', options, QUANTIZE_OPTIONS);
  const { graph: read, name } = await graphOf(model);
  requireImages(calibration, 'calibration');
  refuseQuantized(read, name);
  // Ops slimkit has no definition for stay float, as in slim quantize (runtime/opaque-types.ts).
  const given = (await withMeasuredOpaqueTypes(read, name)).graph;
  if (options.normalization) checkNormalization(options.normalization);
  if (options.resize) checkResizeOption(options.resize, modelInputSize(given));
  const normalized = recordingNormalization(given, options.normalization);
  const source = options.resize ? { ...normalized, metadata: { ...normalized.metadata, ...resizeMetadata(options.resize) } } : normalized;
  const freed = forBatches(source, name, { quiet: true, flattenScores: false });
  // A model exported for one batch size had its undefined ops measured at that size: again, now freed.
  const batch = freed.graph !== source ? { ...freed, graph: (await withMeasuredOpaqueTypes(freed.graph, name)).graph } : freed;
  requireOneInput(dataInputs(batch.graph), name, 'calibration');
  const method = options.method ?? 'auto';
  const static_ = staticOptionsOf(options);
  const threads = options.threads ?? defaultThreads();
  const calibrated = await calibrateImages(batch.graph, calibration, static_, {
    // Given statistics now recorded are read back as the CLI reads its flags: the same bytes.
    normalization: normalized !== given ? normalizationFor(batch.graph) : options.normalization ?? batch.normalization ?? normalizationFor(batch.graph),
    samples: options.samples ?? 512,
    seed: options.seed ?? 0,
    auto: method === 'auto',
    threads,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const tuned = await autoConvLayout(calibrated.result.graph, static_.cpu, threads);
  const output = madeBySlimkit(batch.restore(tuned?.graph ?? calibrated.result.graph));
  validateGraph(output, { file: name });
  const { plan, params } = calibrated.result;
  return {
    graph: output,
    float: calibrated.result.float,
    reference: calibrated.result.reference,
    method: calibrated.options.calibration.method,
    calibrationImages: calibrated.calibSet.labels.length,
    ...(calibrated.choice && calibrated.heldOut
      ? { methodScores: scoresByMethod(calibrated.choice), heldOutImages: calibrated.heldOut.labels.length }
      : {}),
    quantizedNodes: plan.units.size,
    floatNodes: plan.float,
    // On a CPU whose int8 sums saturate, evaluating the model here understates it: said as the CLI says it.
    warnings: [...params.warnings, ...[saturationNote(output, 'the quantized model')].filter((n): n is string => n !== undefined)],
    calibrationSeconds: calibrated.calibrationSeconds,
  };
}

/**
 * The model recording the statistics it is calibrated with, as `slim quantize --mean/--std` records
 * them: what slimkit, the bundles and a later evaluation then feed it. Recorded statistics apply to
 * pixels × 1/255, so another scale is folded into them.
 */
function recordingNormalization(graph: Graph, normalization: Normalization | undefined): Graph {
  if (!normalization) return graph;
  const k = 255 * normalization.scale;
  const unit = Math.abs(k - 1) < 1e-12 ? 1 : k;
  return withGivenNormalization(graph, { mean: normalization.mean.map((v) => v / unit), std: normalization.std.map((v) => v / unit) });
}

/**
 * Quantization starts from a float model: one with quantize / dequantize nodes is refused — as usage
 * (exit 2), as slim prune refuses an int8 model: the file is sound, it is the wrong one for the command.
 */
export function refuseQuantized(graph: Graph, file: string): void {
  const quantized = graph.nodes.find((n) => ['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger'].includes(n.opType));
  if (quantized) throw new SlimError({ file, where: `node '${quantized.name}' (${quantized.opType})`, problem: 'the model is already quantized', fix: 'quantize the float model it was made from' }, 'usage');
}

/** A set of images that holds what it says, and at least one. */
function requireImages(images: ImageSet, role: string): void {
  checkImageSet(images, role);
  if (images.labels.length === 0) throw inputError({ where: `${role} images (${images.name})`, problem: 'there are none', fix: `give at least one ${role} image` });
}

/**
 * What `slim info` measures: bytes of the model (and gzipped), parameters, non-zero parameters and MACs
 * per image. A path is measured as `slim info` measures it — the file's bytes as stored, external data
 * included; a Graph by the bytes slimkit encodes it to. In a model with ops slimkit has no definition
 * for, MACs count the other ops (`unknownOps` names them; their output shapes are measured with ONNX
 * Runtime), or are null where those cannot be measured (a free image size).
 */
export async function measureModel(model: ModelSource): Promise<ModelStats> {
  if (typeof model === 'string') {
    const loaded = await withOpaqueFacts(await loadModelForRuntime(model), model);
    return loadedModelStats(loaded, modelInputSize(loaded.graph));
  }
  let facts: InferenceResult | undefined;
  try {
    facts = unknownOps(model).length ? (await withOpaqueFacts({ graph: model, facts: undefined }, 'the model')).facts : inferShapes(model);
  } catch {
    facts = undefined;
  }
  return modelStats(model, facts, undefined, modelInputSize(model));
}
