/**
 * The model as the commands that feed batches work on it: training, distillation, calibration and
 * fine-tuning feed normalized float32 N×C×H×W batches of many images.
 */
import { usageError } from '../errors.js';
import type { Normalization } from './types.js';
import type { Graph } from '../onnx/graph.js';
import { rawPixelInput } from '../onnx/image-input.js';
import { anyBatch, fixBatch } from '../passes/any-batch.js';
import { flattenScores, unflattenScores, type FlatScores } from '../passes/flat-scores.js';
import { joinPixelPreprocessing, splitPixelPreprocessing, type PixelPreprocessing } from '../passes/pixel-preprocessing.js';
import { METADATA_KEYS, normalizationMetadata } from '../zoo/metadata.js';
import { normalizationFor, type DataOptions } from './model-data.js';
import { formatNumbers } from '../report/format.js';
import { log } from '../util/terminal.js';

export interface WorkingModel {
  /** The model the command works on (the model itself when it needs no change). */
  graph: Graph;
  /** A model derived from `graph`, in the form the file was exported in: its batch, its preprocessing. */
  restore(derived: Graph): Graph;
  /**
   * How to feed `graph` when it is the network inside a model that preprocesses its input: what the
   * preprocessing and --mean/--std come to. Use it instead of normalizationFor(graph, flags), which
   * would apply the flags (meant for the model's input) to the network.
   */
  normalization?: Normalization;
}

/** The model as exported: for commands (or modes) that feed no batches. */
export function asExported(graph: Graph): WorkingModel {
  return { graph, restore: (g) => g };
}

/**
 * The model with what would keep batches out taken off, and put back on what the command writes:
 * - a model exported for one batch size has its batch freed (passes/any-batch.ts);
 * - class scores shaped [N, classes, 1, 1] get a Flatten behind them (passes/flat-scores.ts);
 * - a model that takes raw pixels (uint8, or channels-last) and normalizes them itself is worked on
 *   as the network after its preprocessing (passes/pixel-preprocessing.ts), which records the mean
 *   and std the preprocessing amounts to; the written model takes the pixels as the original did.
 * `data`: the --mean/--std flags, which describe a float32 input's normalization. `written`: false when
 * the command writes no model derived from this one (a distillation teacher).
 */
export function forBatches(graph: Graph, file: string, options: NetworkOptions = {}): WorkingModel {
  const pixels = rawPixelInput(graph) ? networkOf(graph, file, options) : undefined;
  const network = pixels?.graph ?? graph;
  const freed = anyBatch(network, { file });
  const fixed = freed.fixedBatch;
  if (fixed !== undefined && !options.quiet) {
    const reshapes = freed.reshapes.length ? ` (${freed.reshapes.length} stored Reshape target(s) now copy the batch)` : '';
    log(`note: ${file} was exported for a batch of ${fixed} only: working on batches of any size${reshapes}; the written model keeps the batch of ${fixed}`);
  }
  const batch = fixed === undefined ? asExported(network) : { graph: freed.graph, restore: (g: Graph) => fixBatch(g, fixed, freed.freed) };
  // Scores shaped [N, classes, 1, 1] (no flatten at export) are trained as [N, classes]; calibration
  // leaves them be (the Flatten would make the head's output an inner value, quantized to 8 bits).
  const flat: FlatScores = options.flattenScores === false ? { graph: batch.graph } : flattenScores(batch.graph);
  const original = flat.original;
  if (original && !options.quiet) log(`note: ${file} scores [N, ${flat.spatialShape!.slice(1).join(', ')}]: training on [N, classes] (a Flatten behind it); the written model keeps its output`);
  const restore = (g: Graph): Graph => {
    const exported = batch.restore(original ? unflattenScores(g, original) : g);
    return pixels ? pixels.restore(exported) : exported;
  };
  return { graph: flat.graph, restore, ...(pixels ? { normalization: pixels.normalization! } : {}) };
}

interface NetworkOptions {
  data?: DataOptions;
  quiet?: boolean;
  written?: boolean;
  /** false: keep [N, classes, 1, 1] scores as they are (calibration needs no [N, classes]). */
  flattenScores?: boolean;
}

/**
 * The network inside a model that preprocesses raw pixels itself (rawPixelInput), with the mean and std
 * it expects recorded; refused, saying where the preprocessing stops, when none can be cut off.
 * `file`: how messages name the model.
 */
export function networkOf(graph: Graph, file: string, options: NetworkOptions = {}): WorkingModel {
  const raw = rawPixelInput(graph);
  if (!raw) throw new Error(`networkOf: ${file} takes float32 N×C×H×W images already`);
  const split = splitPixelPreprocessing(graph);
  if ('reason' in split) {
    throw usageError(`${file} takes ${raw.text} images and preprocesses them itself, but ${split.reason}: slimkit feeds normalized float32 N×C×H×W batches`,
      'quantize, prune or train the network without its preprocessing (export it with a float32 N×C×H×W input); slim eval and bench take this model as it is');
  }
  const pre = split.preprocessing;
  const normalization = networkNormalization(pre, graph, options.data ?? {}, file);
  const steps = pre.nodes.map((n) => n.opType).join(' → ');
  if (!options.quiet) {
    const written = options.written === false ? '' : '; the written model takes the images as before';
    log(`note: ${file} takes ${raw.text} images and preprocesses them itself (${steps}): working on the network after that ('${pre.cut}', float32 N×C×H×W, mean ${formatNumbers(normalization.mean)} std ${formatNumbers(normalization.std)})${written}`);
  }
  const network: Graph = {
    ...split.network,
    metadata: { ...split.network.metadata, ...normalizationMetadata(normalization) },
  };
  // A float32 input's --mean/--std describe the images the written model takes: recorded with it.
  const given = pre.input.dtype !== 'uint8' && (options.data?.mean || options.data?.std) ? normalizationFor(graph, options.data) : undefined;
  return { graph: network, restore: (g) => withOriginalNormalization(joinPixelPreprocessing(g, pre), given ? withInputNormalization(graph, given) : graph), normalization };
}

/**
 * The mean and std under which slimkit's normalized images, fed to the network, equal what the
 * preprocessing makes of the same pixels. A uint8 input is fed the pixels themselves; a float32 one
 * (channels-last) is fed images normalized as the model's metadata or --mean/--std say.
 */
function networkNormalization(pre: PixelPreprocessing, graph: Graph, data: DataOptions, file: string): Normalization {
  if ((data.mean || data.std) && pre.input.dtype === 'uint8') {
    throw usageError(`${file} takes raw uint8 pixels and normalizes them itself, so --mean/--std have nothing to describe`, 'drop --mean and --std');
  }
  const fed = normalizationFor(graph, data);
  // fed(p) = a·p + b for a pixel p in 0–255; the network sees scale·fed + shift = (p·fed.scale − mean′) / std′.
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < pre.scale.length; c++) {
    const [a, b] = pre.input.dtype === 'uint8' ? [1, 0] : [fed.scale / fed.std[c]!, -fed.mean[c]! / fed.std[c]!];
    const slope = pre.scale[c]! * a;
    const offset = pre.scale[c]! * b + pre.shift[c]!;
    std.push(fed.scale / slope);
    mean.push(-offset * (fed.scale / slope));
  }
  return { scale: fed.scale, mean, std };
}

function withInputNormalization(graph: Graph, n: Normalization): Graph {
  return { ...graph, metadata: { ...graph.metadata, ...normalizationMetadata(n) } };
}

/** `joined` with the original model's mean/std entries (or none): they describe its input, not the network's. */
function withOriginalNormalization(joined: Graph, original: Graph): Graph {
  const metadata = { ...joined.metadata };
  for (const key of [METADATA_KEYS.mean, METADATA_KEYS.std]) {
    const value = original.metadata[key];
    if (value === undefined) delete metadata[key];
    else metadata[key] = value;
  }
  return { ...joined, metadata };
}
