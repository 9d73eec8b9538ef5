/**
 * Classification accuracy of an ORT model over an ImageSet: top-1, top-5, per-class accuracy and the
 * confusion matrix, in one streaming pass.
 *
 * Speed: pixels go through a per-channel lookup table (256 floats per channel) straight into one of two
 * reused feed buffers; batch k+1 is filled after ORT has been handed batch k and before awaiting it, so
 * the loop is correct whether ORT runs on the JS thread (onnxruntime-node 1.30, see ort.ts) or off it.
 * A buffer is refilled only after the run that read it has resolved. Everything here but ORT costs
 * ~15 µs an image (0.15 s for CIFAR-10 test), ~0.2 % of a ResNet18's forward pass on 2 cores; see
 * bench/eval-vs-plain-ort.ts for the comparison with a hand-written loop.
 */
import { inputError, mismatchError, usageError } from '../errors.js';
import type { Dim } from '../onnx/graph.js';
import { toNumbers, type Tensor } from '../onnx/tensor.js';
import { imageDims, normalizeInto, toChannelsLast } from '../data/transforms.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { isChannelsLast, requireOneInput } from '../onnx/image-input.js';
import { classScoreDims } from './class-scores.js';
import { sourceOfSet, type ImageSource } from '../data/stream.js';

/** What the checks read of a set or a source: its name and image shape. */
type SetShape = Pick<ImageSet, 'name' | 'imageShape'>;
import { describeInfos, type OrtModel, type OrtValueInfo } from './ort.js';

export interface EvaluateOptions {
  /** Images per run; default 256. A model with a fixed batch dim uses that instead. */
  batchSize?: number;
  /**
   * One image per run whatever `batchSize` says: for a model whose result for one image depends on the
   * others run with it (src/onnx/image-mixing.ts), so top-1 is what a device classifying one image sees.
   */
  oneImagePerRun?: boolean;
  /** Evaluate only the first `limit` images. */
  limit?: number;
  /** Pixel → input mapping; ignored for models that take uint8 pixels. */
  normalization: Normalization;
  /** Which model input receives the images; needed only when the model has several. */
  inputName?: string;
  onProgress?(done: number, total: number): void;
  /** Also return each image's predicted class and true class (off by default: it would bloat JSON output). */
  keepPredictions?: boolean;
}

export interface ClassAccuracy {
  name: string;
  correct: number;
  total: number;
  /** correct / total, or 0 for a class with no images. */
  accuracy: number;
}

export interface EvaluateResult {
  count: number;
  /** Fractions in 0..1. */
  top1: number;
  top5: number;
  perClass: ClassAccuracy[];
  /**
   * confusion[trueLabel][predictedLabel] = image count, for up to DENSE_CONFUSION_CLASSES classes (a
   * matrix of 20,000 classes would be 400 M numbers); with more, only `confusionPairs`.
   */
  confusion?: number[][];
  /** The confusion matrix's non-zero cells, [trueLabel, predictedLabel, count], by true then predicted label. */
  confusionPairs: [number, number, number][];
  seconds: number;
  imagesPerSecond: number;
  /**
   * Images whose class scores hold a NaN (a broken model: fp16 overflow, a bad weight): counted wrong in
   * top-1 and top-5 and left out of the confusion matrix, whose rows then sum to fewer than per-class totals.
   */
  nanImages: number;
  /** Predicted class of image i (argmax, ties to the lower index); only with `keepPredictions`. */
  predictions?: Uint16Array;
  /** True class of image i, beside `predictions` (a source read a chunk at a time keeps no labels). */
  labels?: Uint16Array;
}

/**
 * Scores `data` — a set in memory, or a source read a chunk at a time (data/stream.ts: a folder larger
 * than memory) — in one pass. `seconds` counts the scoring, not the decoding of a source's chunks.
 */
export async function evaluate(model: OrtModel, data: ImageSet | ImageSource, options: EvaluateOptions): Promise<EvaluateResult> {
  const source = 'chunks' in data ? data : sourceOfSet(data);
  const input = pickInput(model, options.inputName);
  const output = model.outputs[0];
  if (!output) throw inputError({ file: model.source, problem: 'the model has no outputs' });
  const [channels, height, width] = source.imageShape;
  const classes = source.classes.length;
  checkInputDims(model, input, source);
  checkOutputDims(model, output, classes);

  const total = Math.min(source.count, options.limit ?? Infinity);
  const fixedBatch = typeof input.dims?.[0] === 'number' ? input.dims[0] : undefined;
  const batchSize = fixedBatch ?? (options.oneImagePerRun ? 1 : options.batchSize ?? 256);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw usageError(`batch size must be a whole number ≥ 1, got ${batchSize}`);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 0)) {
    throw usageError(`limit must be a whole number ≥ 0, got ${options.limit}`);
  }

  const imageSize = channels * height * width;
  const channelsLast = feedsChannelsLast(input, source);
  const lut = input.dtype === 'uint8' ? undefined : lookupTable(options.normalization, channels, source.name);
  const dimsFor = (n: number): number[] => imageDims(fixedBatch ?? n, source.imageShape, channelsLast);

  const tally: Tally = {
    classes,
    cells: new Map(),
    classTotals: new Array<number>(classes).fill(0),
    top5Hits: 0,
    nanImages: 0,
  };
  const predictions = options.keepPredictions ? new Uint16Array(total) : undefined;
  const labels = options.keepPredictions ? new Uint16Array(total) : undefined;
  let scored = 0;
  // The source's images passed: those scored and those it left out (unreadable, with skipBad), so
  // that progress reaches `total` and the limit counts the source's images as it does.
  let passed = 0;
  let nanoseconds = 0n;
  for await (const set of source.chunks({ limit: total })) {
    checkChunk(set, source);
    const count = Math.min(set.labels.length, total - passed);
    const start = process.hrtime.bigint();
    const feeder = lut
      ? floatFeeder(set, imageSize, batchSize, fixedBatch !== undefined, lut, channelsLast)
      : pixelFeeder(set, imageSize, batchSize, fixedBatch !== undefined, channelsLast);
    const batchCount = Math.ceil(count / batchSize);
    let next: Tensor | undefined = batchCount > 0 ? feeder(0, Math.min(batchSize, count), dimsFor) : undefined;
    for (let b = 0; b < batchCount; b++) {
      const first = b * batchSize;
      const n = Math.min(batchSize, count - first);
      const pending = model.run({ [input.name]: next! }, { outputs: [output.name] });
      // Fill the other buffer while this run is queued (or running, for an asynchronous backend).
      if (b + 1 < batchCount) {
        const nextFirst = first + batchSize;
        next = feeder(nextFirst, Math.min(batchSize, count - nextFirst), dimsFor);
      }
      const logits = (await pending)[output.name]!;
      const at = scored + first;
      score(logits, set.labels.subarray(first, first + n), tally, model.source, predictions?.subarray(at, at + n));
      options.onProgress?.(passed + first + n, total);
    }
    nanoseconds += process.hrtime.bigint() - start;
    labels?.set(set.labels.subarray(0, count), scored);
    scored += count;
    const skipped = set.skipped?.length ?? 0;
    passed += count + skipped;
    if (skipped > 0) options.onProgress?.(Math.min(passed, total), total);
    // Stopped here, not on the next chunk: asking for it would decode it (and start the one after).
    if (passed >= total) break;
  }
  const seconds = Number(nanoseconds) / 1e9;

  const perClass = source.classes.map((name, c): ClassAccuracy => {
    const classTotal = tally.classTotals[c]!;
    const correct = tally.cells.get(c * classes + c) ?? 0;
    return { name, correct, total: classTotal, accuracy: classTotal ? correct / classTotal : 0 };
  });
  const correct = perClass.reduce((a, p) => a + p.correct, 0);
  return {
    count: scored,
    top1: scored ? correct / scored : 0,
    top5: scored ? tally.top5Hits / scored : 0,
    perClass,
    ...confusionOf(tally),
    seconds,
    imagesPerSecond: seconds > 0 ? scored / seconds : 0,
    nanImages: tally.nanImages,
    ...(predictions ? { predictions: scored < total ? predictions.slice(0, scored) : predictions } : {}),
    ...(labels ? { labels: scored < total ? labels.slice(0, scored) : labels } : {}),
  };
}

/** A source's chunk must be of its images: a hand-made source could yield others, read as garbage. */
function checkChunk(set: ImageSet, source: ImageSource): void {
  const [c, h, w] = source.imageShape;
  const sameShape = set.imageShape.every((v, i) => v === source.imageShape[i]);
  if (!sameShape || set.pixels.length !== set.labels.length * c * h * w || set.classes.length !== source.classes.length) {
    throw inputError({
      where: `images of ${source.name}`,
      problem: `a chunk holds ${set.labels.length} labels of ${set.classes.length} classes and ${set.pixels.length} pixel bytes of ${set.imageShape.join('×')} images; the source has ${source.classes.length} classes of ${c}×${h}×${w} images`,
      fix: 'yield chunks of the images the source describes',
    });
  }
}

function pickInput(model: OrtModel, inputName: string | undefined): OrtValueInfo {
  if (inputName !== undefined) {
    const found = model.inputs.find((i) => i.name === inputName);
    if (!found) {
      throw usageError(`the model ${model.source} has no input '${inputName}'`, `its inputs: ${describeInfos(model.inputs)}`);
    }
    return found;
  }
  requireOneInput(model.inputs, model.source, 'evaluation');
  return model.inputs[0]!;
}

function checkInputDims(model: OrtModel, input: OrtValueInfo, set: SetShape): void {
  if (input.dtype !== 'float32' && input.dtype !== 'uint8') {
    throw inputError({
      file: model.source,
      where: `input '${input.name}'`,
      problem: `takes ${input.dtype ?? 'a non-tensor value'}; evaluation feeds float32 (normalized) or uint8 (raw pixel) images`,
      fix: 'export the model with a float32 NCHW image input',
    });
  }
  const dims = input.dims;
  if (!dims) return;
  const [c, h, w] = set.imageShape;
  const channelsLast = feedsChannelsLast(input, set);
  const sameSize = dims.length === 4 && (channelsLast ? [h, w, c] : [c, h, w]).every((v, i) => sizeFits(dims[i + 1]!, v));
  if (!sameSize) {
    throw mismatchError({
      file: model.source,
      where: `input '${input.name}'`,
      problem: `expects images [${dims.join(', ')}] (${channelsLast ? 'N×H×W×C' : 'N×C×H×W'}) but data set ${set.name} has ${c}×${h}×${w} images`,
      fix: `evaluate on data of the model's input size, or export the model for ${c}×${h}×${w} input`,
    });
  }
}

function checkOutputDims(model: OrtModel, output: OrtValueInfo, classes: number): void {
  const dims = output.dims;
  if (!dims) return;
  const scores = classScoreDims(dims);
  if (!scores || !sizeFits(scores[1], classes)) {
    throw mismatchError({
      file: model.source,
      where: `output '${output.name}'`,
      problem: `has dims [${dims.join(', ')}]; evaluation needs [N, ${classes}] scores for a ${classes}-class data set`,
      fix: 'evaluate with the data set the model was trained for, or export a model whose first output is [N, classes]',
    });
  }
}

/** N×H×W×C: an input shaped channels-last that does not take the set's images as N×C×H×W. */
function feedsChannelsLast(input: OrtValueInfo, set: SetShape): boolean {
  const dims = input.dims;
  if (!dims || dims.length !== 4 || !isChannelsLast(dims)) return false;
  const [c, h, w] = set.imageShape;
  return ![c, h, w].every((v, i) => sizeFits(dims[i + 1]!, v));
}

function sizeFits(dim: Dim, size: number): boolean {
  return typeof dim !== 'number' || dim === size;
}

/**
 * lut[c*256 + p] = the normalized value of pixel p in channel c, made by `normalizeInto` itself on a
 * C×1×256 ramp so evaluation feeds bit-for-bit the values `batches` gives training and calibration.
 */
function lookupTable(norm: Normalization, channels: number, setName: string): Float32Array {
  for (const [what, list] of [['means', norm.mean], ['stds', norm.std]] as const) {
    if (list.length !== channels && list.length !== 1) {
      throw usageError(`normalization has ${list.length} ${what} but ${setName} images have ${channels} channels`, 'give one mean and one std per channel');
    }
  }
  const ramp = new Uint8Array(channels * 256);
  for (let i = 0; i < ramp.length; i++) ramp[i] = i & 255;
  const lut = new Float32Array(channels * 256);
  normalizeInto(lut, 0, ramp, 0, [channels, 1, 256], norm);
  return lut;
}

type Feeder = (first: number, n: number, dimsFor: (n: number) => number[]) => Tensor;

/** Normalized float32 batches, alternating between two buffers (ORT never holds more than one). */
function floatFeeder(set: ImageSet, imageSize: number, batchSize: number, padToBatch: boolean, lut: Float32Array, channelsLast: boolean): Feeder {
  const buffers = [new Float32Array(batchSize * imageSize), new Float32Array(batchSize * imageSize)];
  const channels = set.imageShape[0];
  const plane = imageSize / channels;
  let turn = 0;
  return (first, n, dimsFor) => {
    const buf = buffers[turn]!;
    turn ^= 1;
    const px = set.pixels;
    let o = 0;
    let i = first * imageSize;
    for (let k = 0; k < n; k++) {
      if (channelsLast) {
        // The set stores C×H×W: pixel p of channel c goes to p·C + c.
        for (let c = 0; c < channels; c++) {
          const base = c * 256;
          for (let p = 0; p < plane; p++) buf[o + p * channels + c] = lut[base + px[i++]!]!;
        }
        o += imageSize;
        continue;
      }
      for (let c = 0; c < channels; c++) {
        const base = c * 256;
        for (let end = o + plane; o < end; ) buf[o++] = lut[base + px[i++]!]!;
      }
    }
    if (padToBatch) buf.fill(0, o);
    return { dtype: 'float32', dims: dimsFor(n), data: padToBatch ? buf : buf.subarray(0, n * imageSize) };
  };
}

/**
 * Raw pixels for models that normalize inside: views of the set, copied only to pad a fixed batch or
 * to interleave the channels for a channels-last input.
 */
function pixelFeeder(set: ImageSet, imageSize: number, batchSize: number, padToBatch: boolean, channelsLast: boolean): Feeder {
  return (first, n, dimsFor) => {
    const view = set.pixels.subarray(first * imageSize, (first + n) * imageSize);
    const laidOut = channelsLast ? toChannelsLast(view, set.imageShape) : view;
    if (!padToBatch || n === batchSize) return { dtype: 'uint8', dims: dimsFor(n), data: laidOut };
    const padded = new Uint8Array(batchSize * imageSize);
    padded.set(laidOut);
    return { dtype: 'uint8', dims: dimsFor(n), data: padded };
  };
}

interface Tally {
  classes: number;
  /** Confusion counts by trueLabel · classes + predictedLabel: only the cells images fall in. */
  cells: Map<number, number>;
  /** Images per true class, NaN-scored ones included. */
  classTotals: number[];
  top5Hits: number;
  nanImages: number;
}

/**
 * Adds one batch to the tally. Ties go to the lower class index (numpy's argmax); a label is in the top 5
 * when fewer than 5 classes outrank it under that order. A row with a NaN score is a miss: NaN compares
 * false with everything, so it would otherwise predict class 0 and put every label in the top 5.
 */
function score(logits: Tensor, labels: Uint16Array, tally: Tally, source: string, predictions?: Uint16Array): void {
  const { classes, cells } = tally;
  const scores = classScoreDims(logits.dims);
  if (!scores || scores[1] !== classes || scores[0] < labels.length) {
    throw inputError({
      file: source,
      problem: `the first output has dims [${logits.dims.join(', ')}]; evaluation needs [N, ${classes}] class scores`,
      fix: 'evaluate with the data set the model was trained for',
    });
  }
  // float16 data holds raw bits, which do not order like the values they encode.
  const data = logits.dtype === 'float16' || logits.dtype === 'bfloat16' || logits.dtype === 'int64' || logits.dtype === 'uint64'
    ? toNumbers(logits)
    : (logits.data as ArrayLike<number>);
  for (let r = 0; r < labels.length; r++) {
    const row = r * classes;
    const label = labels[r]!;
    if (label >= classes) {
      throw inputError({ problem: `image label ${label} is outside the ${classes} classes of the data set`, fix: 'check the data set labels' });
    }
    tally.classTotals[label]!++;
    if (hasNaN(data, row, classes)) {
      tally.nanImages++;
      // No class: a prediction of -1 does not fit the Uint16Array, and none is right.
      if (predictions) predictions[r] = NO_PREDICTION;
      continue;
    }
    const target = data[row + label]!;
    let best = 0;
    let bestValue = data[row]!;
    let outranks = 0;
    for (let j = 0; j < classes; j++) {
      const v = data[row + j]!;
      if (v > bestValue) {
        bestValue = v;
        best = j;
      }
      if (v > target || (v === target && j < label)) outranks++;
    }
    const cell = label * classes + best;
    cells.set(cell, (cells.get(cell) ?? 0) + 1);
    if (predictions) predictions[r] = best;
    if (outranks < 5) tally.top5Hits++;
  }
}

/** Classes up to which a result holds the whole confusion matrix (ImageNet's 1,000 fit: 1 M numbers). */
export const DENSE_CONFUSION_CLASSES = 2048;

function confusionOf(tally: Tally): Pick<EvaluateResult, 'confusion' | 'confusionPairs'> {
  const { classes } = tally;
  const keys = [...tally.cells.keys()].sort((a, b) => a - b);
  const confusionPairs = keys.map((k): [number, number, number] => [Math.floor(k / classes), k % classes, tally.cells.get(k)!]);
  if (classes > DENSE_CONFUSION_CLASSES) return { confusionPairs };
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (const [t, p, n] of confusionPairs) confusion[t]![p] = n;
  return { confusion, confusionPairs };
}

/** `predictions[i]` of an image whose scores hold a NaN. */
export const NO_PREDICTION = 0xffff;

function hasNaN(data: ArrayLike<number>, start: number, length: number): boolean {
  for (let j = start; j < start + length; j++) if (Number.isNaN(data[j])) return true;
  return false;
}

/** A warning for a model that scored some images NaN (they count as wrong), or undefined. */
export function nanScoresWarning(file: string, result: Pick<EvaluateResult, 'nanImages' | 'count'>): string | undefined {
  if (result.nanImages === 0) return undefined;
  return `warning: ${file} gave NaN class scores for ${result.nanImages} of ${result.count} images (counted wrong): the model computes NaN — compare it with the model it was made from (\`slim eval\` both), and for a float16 model look for values beyond ±65504`;
}
