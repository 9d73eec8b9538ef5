/**
 * From an .onnx file to what a bundle records about it: the image input, preprocessing (flags, then
 * the model's slimkit metadata, then CIFAR-10's statistics), labels, the output and whether it is
 * logits — and proof that ONNX Runtime loads and runs it with that many labels.
 */
import { shellCommand } from '../util/shell.js';
import { ownTop1, stepLines } from '../report/provenance.js';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { inputError, usageError } from '../errors.js';
import { imageDims } from '../data/transforms.js';
import { checkResize, DEFAULT_RESIZE, describeResize } from '../data/image-folder.js';
import { dataInputs, type Graph } from '../onnx/graph.js';
import { decodeModel, encodeModel } from '../onnx/io.js';
import { fixedImageSize, imageAxes, requireOneInput, takesChannelsLast } from '../onnx/image-input.js';
import { imageSizeFor } from '../data/model-data.js';
import type { Tensor } from '../onnx/tensor.js';
import { loadModelForRuntime } from '../onnx/validate.js';
import { openSession } from '../runtime/ort.js';
import { imageMixingNodes } from '../onnx/image-mixing.js';
import { checkGivenPair, checkNormalizationPair, defaultNormalization, modelChannels, overriddenNormalizationNote, perChannel, readPreprocessing, resizeMetadata } from '../zoo/metadata.js';
import { classScoreDims } from '../runtime/class-scores.js';
import { hasWideInt8Weights } from '../compress/quantize/cpu.js';
import { toGenericLayout } from '../compress/quantize/generic-layout.js';
import { MODEL_FILE, type BundleConfig, type ModelConfig, type Preprocess, type Target } from './config.js';
import { formatPercent } from '../report/format.js';

export interface PrepareOptions {
  /** Class names in output order (e.g. read from --labels); default: the model's metadata. */
  labels?: string[];
  /** [height, width]; default: the model's metadata or its input shape. */
  imageSize?: [number, number];
  mean?: number[];
  std?: number[];
  resize?: Preprocess['resize'];
  /** Bundle name; default: the model file name without extension. */
  name?: string;
  /**
   * Where the bundle runs. For arm64 and the web an int8 model laid out for AMX CPUs (slim quantize on
   * such a machine) is re-laid out for their kernels: the same integers, symmetric Conv weights.
   */
  target?: Target;
}

export interface PreparedModel {
  /** The model as it goes into the bundle (external data inlined). */
  bytes: Uint8Array;
  config: Omit<BundleConfig, 'target' | 'createdBy'>;
  /** Things the user should know (defaults taken); printed on stderr. */
  warnings: string[];
  /** What was changed on the way in (printed on stderr, not as warnings). */
  notes: string[];
}

export async function prepareModel(file: string, options: PrepareOptions = {}): Promise<PreparedModel> {
  const warnings: string[] = [];
  const notes: string[] = [];
  const loaded = await loadModelForRuntime(file);
  let { graph } = loaded;
  if (loaded.unknownOps.length > 0) {
    notes.push(`slimkit has no definition for ${loaded.unknownOps.join(', ')}; the bundle's ONNX Runtime runs ${loaded.unknownOps.length > 1 ? 'them' : 'it'} (checked by a test run below)`);
  }
  let bytes: Uint8Array = await readFile(file);
  if (usesExternalData(bytes, file)) {
    bytes = encodeModel(graph).model;
    warnings.push(`${file} keeps its weights in an external data file; the bundle's model.onnx holds them inline`);
  }
  if (options.target === 'linux-arm64' || options.target === 'web') {
    // Zero point −1 weights and padded RGB channels only pay off on x64 AMX, uint8 weights on x64 without
    // VNNI; elsewhere they cost time.
    const generic = toGenericLayout(graph);
    if (generic.changed) {
      graph = generic.graph;
      bytes = encodeModel(graph).model;
      notes.push(`int8 Convs re-laid out for ${options.target} (symmetric weights, no channel padding): the same integers, the kernels that target runs fastest`);
    }
  }
  // WebAssembly's int8 kernels are not the native ones: an int8 model may gain little there, or lose.
  if (options.target === 'web' && graph.nodes.some((n) => n.opType === 'DequantizeLinear' && graph.initializers.has(n.inputs[0] ?? ''))) {
    notes.push(`${file} is int8: onnxruntime-web's WebAssembly kernels gain less from int8 than native ones, and on a small model can lose to float (the README's browser row measures this on the demo model) — compare the float and int8 models with slim bench FLOAT INT8 --target web before shipping`);
  }
  // Which x64 CPU the bundle lands on is not known here: one without VNNI would saturate these weights.
  if (options.target === 'linux-x64' && hasWideInt8Weights(graph)) {
    notes.push(`${file}'s int8 weights use 8 bits: on x64 CPUs without VNNI (AVX2 only: AMD Zen 2/3, Intel before Cascade Lake) ONNX Runtime's int8 sums can saturate and cost accuracy — for such devices quantize with --cpu avx2 or --reduce-range (slim doctor on the device says which CPU it is)`);
  }
  const input = imageInput(graph, file);
  const meta = readPreprocessing(graph, file);
  const size = imageSize(graph, meta.inputShape, options.imageSize, file);
  const channels = modelChannels(graph);
  const fallback = defaultNormalization(graph);
  let norm = meta.normalization;
  checkGivenPair(options.mean, options.std);
  if (input.dtype === 'uint8') {
    // Fed the decoded 0–255 values as they are: slim.json says so (scale 1, mean 0, std 1) rather than
    // list statistics nothing applies.
    if (options.mean) throw usageError(`${file} takes raw uint8 pixels and normalizes them itself: --mean and --std would not be applied`, 'drop --mean and --std');
    norm = { scale: 1, mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) };
  } else if (options.mean && options.std) {
    const note = overriddenNormalizationNote(graph, options, file);
    if (note) warnings.push(note.replace(/^note: /, ''));
    norm = { scale: 1 / 255, mean: options.mean, std: options.std };
  } else if (input.dtype === 'float32') checkNormalizationPair(graph, file);
  if (!norm) {
    norm = fallback;
    if (input.dtype === 'float32') {
      warnings.push(`${file} records no mean/std (slimkit.mean, slimkit.std); using ${channels === 1 ? 'mean 0.5, std 0.5 (grayscale)' : 'CIFAR-10\'s'} — pass --mean and --std if it was trained with others`);
    }
  }
  for (const [flag, key, list] of [['--mean', 'slimkit.mean', norm.mean], ['--std', 'slimkit.std', norm.std]] as const) {
    // One value serves every channel; slim.json holds one per channel.
    if (list.length !== channels && list.length !== 1) {
      const source = options[flag === '--mean' ? 'mean' : 'std'] ? flag : `the model's ${key} metadata`;
      throw usageError(`${source} has ${list.length} value${list.length === 1 ? '' : 's'} but the model takes ${channels === 1 ? 'grayscale (1-channel)' : 'RGB (3-channel)'} images`,
        `pass ${flag} with ${channels === 1 ? 'one number' : 'three numbers, r,g,b'}`);
    }
  }
  norm = perChannel(norm, channels);
  const output = graph.outputs[0]!;
  const outputKind: ModelConfig['outputKind'] = endsInSoftmax(graph, output.name) ? 'probabilities' : 'logits';

  const fixedBatch = typeof input.shape?.[0] === 'number' ? input.shape[0] : undefined;
  const layout = takesChannelsLast(graph) ? 'NHWC' : 'NCHW';
  const classes = await smokeRun(bytes, file, input.name, input.dtype as 'float32' | 'uint8', output.name, imageDims(fixedBatch ?? 1, [channels, ...size], layout === 'NHWC'));
  const labels = options.labels ?? meta.classNames ?? defaultLabels(classes, file, warnings);
  const mixing = imageMixingNodes(graph);
  const oneImagePerRun = mixing.length > 0;
  if (oneImagePerRun) notes.push(`${mixing[0]!.opType} '${mixing[0]!.node}' ${mixing[0]!.reason}: the bundle's server runs one image per run (batched, an answer would depend on the other requests)`);
  if (labels.length !== classes) {
    throw inputError({
      file,
      problem: `outputs ${classes} class scores but ${labels.length} labels were given${options.labels ? ' (--labels)' : ' (model metadata slimkit.classes)'}`,
      fix: `pass --labels with a file of ${classes} class names, one per line`,
    });
  }
  const resize = resizeFor(options.resize, meta.resize, size, file, warnings);
  // The resize the model records (the default when none), and whether the bundle's is another.
  const recordedMode = describeResize(meta.resize ?? DEFAULT_RESIZE);
  const resizeChanged = describeResize(resize) !== recordedMode;
  if (resizeChanged) {
    // The bundled model records the bundle's resize: `slim eval` of it then reads photos as the bundle does.
    bytes = encodeModel({ ...graph, metadata: { ...graph.metadata, ...resizeMetadata(resize) } }).model;
  }
  // What the bundle can say of its model: the top-1 its file records of itself, and how it was made. A
  // top-1 measured with other preprocessing than the bundle's is not the bundle's (a trial's 64×64 model
  // deployed at 32×32 claimed 36.13 % and scored 31.09 %): withheld, with why.
  const recordedTop1 = ownTop1(graph.metadata);
  const ownSize = (() => {
    try {
      return imageSize(graph, meta.inputShape, undefined, file);
    } catch {
      return undefined;
    }
  })();
  const changed = [
    ownSize && (ownSize[0] !== size[0] || ownSize[1] !== size[1]) ? `${size.join('×')} images (it records ${ownSize.join('×')})` : undefined,
    resizeChanged ? `--resize ${describeResize(resize)} (it records ${recordedMode})` : undefined,
    options.mean && options.std && meta.normalization && (options.mean.join() !== meta.normalization.mean.join() || options.std.join() !== meta.normalization.std.join()) ? 'another mean/std' : undefined,
  ].filter((c): c is string => c !== undefined);
  const top1 = changed.length ? undefined : recordedTop1;
  const top1Note = recordedTop1 && changed.length ? `the top-1 the model records (${(recordedTop1.top1 * 100).toFixed(2)} %) was measured with its own preprocessing, and this bundle feeds it ${changed.join(' and ')}` : undefined;
  if (top1Note) warnings.push(`${top1Note}: the bundle states no top-1 — measure it as the bundle runs it: ${evalHint(file, size, resize)}`);
  // Scored where int8 sums saturate: which of its two scores the target's kernels give.
  if (top1?.exactKernels !== undefined) {
    const [exact, saturated] = [top1.exactKernels, top1.top1].map((v) => formatPercent(v));
    notes.push(options.target === 'linux-x64'
      ? `${file} scores ${exact} top-1 on x64 CPUs with VNNI or AMX and ${saturated} on those without, whose int8 sums saturate (as slim quantize measured): the README states both`
      : `the README states ${file}'s top-1 on exact int8 kernels, which ${options.target === 'web' ? 'the browser' : 'arm64'} runs: ${exact} (the x64 CPU that made it, whose int8 sums saturate, measured ${saturated})`);
  }
  const made = stepLines(graph.metadata);
  return {
    bytes,
    warnings,
    notes,
    config: {
      format: 'slimkit-bundle',
      formatVersion: 1,
      name: options.name ?? path.basename(file).replace(/\.onnx$/i, ''),
      model: {
        file: MODEL_FILE,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        bytes: bytes.length,
        input: input.name,
        inputType: input.dtype as 'float32' | 'uint8',
        ...(fixedBatch !== undefined ? { fixedBatch } : {}),
        ...(oneImagePerRun ? { oneImagePerRun } : {}),
        output: output.name,
        outputKind,
        ...(top1 ? { top1: { value: top1.top1, ...(top1.images !== undefined ? { images: top1.images } : {}), ...(top1.data ? { data: top1.data } : {}), ...(top1.exactKernels !== undefined ? { exactKernels: top1.exactKernels } : {}) } } : {}),
        ...(top1Note ? { top1Note } : {}),
        ...(made.length ? { made } : {}),
      },
      preprocess: { size, resize, layout, channels: channels === 1 ? 'grayscale' : 'RGB', scale: norm.scale, mean: norm.mean, std: norm.std },
      labels,
    },
  };
}

/** `slim eval` of the model as a bundle feeds it. */
function evalHint(file: string, size: [number, number], resize: Preprocess['resize']): string {
  return shellCommand(['slim', 'eval', file, '--data', 'DATA', '--image-size', size.join(','), '--resize', describeResize(resize)]);
}

function usesExternalData(bytes: Uint8Array, file: string): boolean {
  try {
    decodeModel(bytes, { file }); // without baseDir, external data is refused
    return false;
  } catch {
    return true; // loadModel (with baseDir) already decoded it, so external data is the only difference
  }
}

function imageInput(graph: Graph, file: string): { name: string; dtype: string; shape?: (number | string)[] } {
  const inputs = dataInputs(graph);
  requireOneInput(inputs, file, 'a deployed bundle');
  const input = inputs[0]!;
  if (input.dtype !== 'float32' && input.dtype !== 'uint8') {
    throw inputError({ file, where: `input '${input.name}'`, problem: `is ${input.dtype}; bundles feed float32 (normalized) or uint8 (raw pixel) images`, fix: 'export the model with a float32 N×3×H×W input' });
  }
  const s = input.shape;
  const channels = s?.[imageAxes(graph).c];
  if (s && (s.length !== 4 || (typeof channels === 'number' && channels !== 3 && channels !== 1))) {
    throw inputError({ file, where: `input '${input.name}'`, problem: `has shape [${s.join(', ')}]; bundles feed N×C×H×W or N×H×W×C images of 3 (RGB) or 1 (grayscale) channels`, fix: 'export the model with a 3- or 1-channel NCHW input' });
  }
  return input;
}

function imageSize(graph: Graph, meta: [number, number, number] | undefined, flag: [number, number] | undefined, file: string): [number, number] {
  // --image-size is checked as every command checks it (a fixed input at another size is a usage mistake, exit 2).
  if (flag) return imageSizeFor(graph, file, flag)!;
  const fromShape = fixedImageSize(graph);
  const fromMeta = meta ? [meta[1], meta[2]] as [number, number] : undefined;
  const chosen = fromMeta ?? fromShape;
  if (!chosen) {
    throw usageError(`${file}: the input's height and width are free and the model records no slimkit.input_size`, 'pass --image-size H,W (the size it was trained at)');
  }
  if (fromShape && (fromShape[0] !== chosen[0] || fromShape[1] !== chosen[1])) {
    throw inputError({ file, where: `input '${dataInputs(graph)[0]!.name}'`, problem: `is fixed at ${fromShape.join('×')} but metadata slimkit.input_size says ${chosen.join('×')}`, fix: `pass --image-size ${fromShape.join(',')} to go by the input, or re-export the model` });
  }
  return chosen;
}

function defaultLabels(classes: number, file: string, warnings: string[]): string[] {
  warnings.push(`${file} records no class names (slimkit.classes); labels are "0".."${classes - 1}" — pass --labels FILE (one name per line) for real names`);
  return Array.from({ length: classes }, (_, i) => String(i));
}

/** Runs one blank image through ORT: proves the model loads and runs, and counts its classes. */
async function smokeRun(bytes: Uint8Array, file: string, input: string, dtype: 'float32' | 'uint8', output: string, dims: number[]): Promise<number> {
  const session = await openSession(bytes, { label: file, threads: 1 });
  try {
    const n = dims.reduce((a, b) => a * b, 1);
    const feed = { dtype, dims, data: dtype === 'uint8' ? new Uint8Array(n) : new Float32Array(n) } as Tensor;
    const result = (await session.run({ [input]: feed }, { outputs: [output] }))[output]!;
    const scores = classScoreDims(result.dims);
    if (result.dtype !== 'float32' || !scores || scores[0] !== dims[0]) {
      throw inputError({ file, where: `output '${output}'`, problem: `is ${result.dtype}[${result.dims.join(', ')}] for a batch of ${dims[0]}; a classifier's first output is float32[N, classes] (or [N, classes, 1, 1])`, fix: 'export the model with class scores as its first output' });
    }
    return scores[1];
  } finally {
    await session.close();
  }
}

/** Ops that change a tensor's type or layout but not its values' meaning (fp16's Cast after a Softmax). */
const PASS_THROUGH = new Set(['Cast', 'Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'QuantizeLinear', 'DequantizeLinear']);

/** Whether `name` is a Softmax's output, perhaps behind casts, reshapes or Q/DQ. */
function endsInSoftmax(graph: Graph, name: string): boolean {
  for (let hops = 0; hops <= graph.nodes.length; hops++) {
    const producer = graph.nodes.find((n) => n.outputs.includes(name));
    if (!producer) return false;
    if (producer.opType === 'Softmax' || producer.opType === 'LogSoftmax') return producer.opType === 'Softmax';
    if (!PASS_THROUGH.has(producer.opType) || !producer.inputs[0]) return false;
    name = producer.inputs[0];
  }
  return false;
}

/**
 * The bundle's resize: --resize, else what the model records (slimkit.resize), else the shorter side. A
 * shorter side smaller than the input is refused now, not on the device's first image.
 */
function resizeFor(given: Preprocess['resize'] | undefined, recorded: Preprocess['resize'] | undefined, size: [number, number], file: string, warnings: string[]): Preprocess['resize'] {
  if (given && recorded && describeResize(given) !== describeResize(recorded)) {
    warnings.push(`${file} records resize ${describeResize(recorded)} (slimkit.resize); --resize ${describeResize(given)} replaces it`);
  }
  const resize = given ?? recorded ?? 'shorter-side';
  checkResize(resize, size, given ? undefined : `${file}'s slimkit.resize`);
  return resize;
}
