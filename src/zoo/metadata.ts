import { inputError, usageError } from '../errors.js';
import { dataInputs, type Graph } from '../onnx/graph.js';
import { imageAxes } from '../onnx/image-input.js';
import { CIFAR10_NORMALIZATION, GRAYSCALE_NORMALIZATION, type Normalization } from '../data/types.js';
import type { ResizeMode } from '../data/image-folder.js';

/**
 * The preprocessing a model expects, stored as JSON strings in ONNX metadata_props so that eval and
 * deploy read it from the model file instead of asking the user again.
 */
export const METADATA_KEYS = {
  /** [channels, height, width] of one input image, e.g. "[3,32,32]". */
  inputSize: 'slimkit.input_size',
  /** Per-channel mean of pixels scaled to [0, 1], e.g. "[0.4914,0.4822,0.4465]". */
  mean: 'slimkit.mean',
  /** Per-channel std of pixels scaled to [0, 1]. */
  std: 'slimkit.std',
  /** Class names, index = logit index. */
  classes: 'slimkit.classes',
  /**
   * How an image is brought to the input: "shorter-side", "stretch", or the shorter side's size before
   * the centre crop (256: torchvision's Resize(256) + CenterCrop(224)). Absent: "shorter-side".
   */
  resize: 'slimkit.resize',
  /** How a zoo model was made: {"name":…, "classes":…, "width":…, "seed":…, "zero_init_residual":…}. */
  zoo: 'slimkit.zoo',
} as const;

/** torchvision's ImageNet statistics, used by the imagenet-stem zoo models. */
export const IMAGENET_NORMALIZATION: Normalization = {
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export interface Preprocessing {
  inputShape: [number, number, number];
  /** Mean and std apply to pixels × 1/255 (the scale slimkit always uses for 8-bit images). */
  normalization: Normalization;
  classNames?: string[];
  /** How a photo is brought to inputShape (image folders, deploy bundles). */
  resize?: ResizeMode;
}

export function preprocessingMetadata(p: Preprocessing): Record<string, string> {
  return {
    [METADATA_KEYS.inputSize]: JSON.stringify(p.inputShape),
    ...normalizationMetadata(p.normalization),
    ...(p.classNames ? { [METADATA_KEYS.classes]: JSON.stringify(p.classNames) } : {}),
    ...(p.resize ? resizeMetadata(p.resize) : {}),
  };
}

/** The metadata entry that records a resize (slimkit.resize): 256 for a shorter side of 256. */
export function resizeMetadata(mode: ResizeMode): Record<string, string> {
  return { [METADATA_KEYS.resize]: JSON.stringify(typeof mode === 'string' ? mode : mode.shorterSide) };
}

/**
 * `graph` recording `names` as its class names (slimkit.classes): what a command that trained it on
 * labelled data writes, so eval and deploy read them. Left as it is when its scores count other than
 * names.length (a zoo model built with more classes than the data has).
 */
export function withClassNames(graph: Graph, names: readonly string[]): Graph {
  const count = graph.outputs[0]?.shape?.[1];
  if (typeof count === 'number' && count !== names.length) return graph;
  return { ...graph, metadata: { ...graph.metadata, [METADATA_KEYS.classes]: JSON.stringify(names) } };
}

/** The metadata entries that record a normalization (slimkit.mean, slimkit.std). */
export function normalizationMetadata(n: Normalization): Record<string, string> {
  return { [METADATA_KEYS.mean]: JSON.stringify(n.mean), [METADATA_KEYS.std]: JSON.stringify(n.std) };
}

/**
 * What the metadata says, each part only when present. Throws an input error naming the key when a
 * value is present but malformed.
 */
export function readPreprocessing(graph: Graph, file?: string): Partial<Preprocessing> {
  const read = <T>(key: string, valid: (v: unknown) => v is T, expected: string): T | undefined => {
    const raw = graph.metadata[key];
    if (raw === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = undefined;
    }
    if (!valid(value)) {
      throw inputError({
        ...(file ? { file } : {}),
        where: `metadata '${key}'`,
        problem: `expected ${expected}, got ${JSON.stringify(raw)}`,
        fix: `fix or remove the '${key}' entry`,
      });
    }
    return value;
  };
  const inputShape = read(METADATA_KEYS.inputSize, isShape, 'a JSON array [channels, height, width] of positive integers');
  const mean = read(METADATA_KEYS.mean, isNumbers, 'a JSON array of numbers');
  const std = read(METADATA_KEYS.std, isNumbers, 'a JSON array of numbers');
  const classNames = read(METADATA_KEYS.classes, isStrings, 'a JSON array of strings');
  const resize = read(METADATA_KEYS.resize, isResize, '"shorter-side", "stretch" or the shorter side\'s size (a positive integer)');
  return {
    ...(inputShape ? { inputShape } : {}),
    ...(mean && std ? { normalization: { scale: 1 / 255, mean, std } } : {}),
    ...(classNames ? { classNames } : {}),
    ...(resize !== undefined ? { resize: typeof resize === 'number' ? { shorterSide: resize } : resize } : {}),
  };
}

/**
 * Whether a model's images are grayscale (1 channel) or RGB: image folders are read as it takes them.
 * Anything but a 1 (in the input shape, else the recorded input size) reads as 3 — a model of another
 * channel count is refused where images meet it.
 */
export function modelChannels(graph: Graph): 1 | 3 {
  const shape = dataInputs(graph)[0]?.shape;
  const fromShape = shape?.length === 4 ? shape[imageAxes(graph).c] : undefined;
  const channels = typeof fromShape === 'number' ? fromShape : readPreprocessing(graph).inputShape?.[0];
  return channels === 1 ? 1 : 3;
}

/** Refuses --mean without --std or the reverse: half a pair would mix the given numbers with another source's. */
export function checkGivenPair(mean: readonly number[] | undefined, std: readonly number[] | undefined): void {
  if ((mean === undefined) === (std === undefined)) return;
  throw usageError(mean ? '--mean without --std' : '--std without --mean', "pass both (torchvision's ImageNet models: --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)");
}

/**
 * Refuses a model that records slimkit.mean without slimkit.std or the reverse: one half and a default
 * for the other would normalize its images in a way nobody chose.
 */
export function checkNormalizationPair(graph: Graph, file?: string): void {
  const [mean, std] = [METADATA_KEYS.mean, METADATA_KEYS.std].map((k) => graph.metadata[k] !== undefined);
  if (mean === std) return;
  const [has, lacks] = mean ? [METADATA_KEYS.mean, METADATA_KEYS.std] : [METADATA_KEYS.std, METADATA_KEYS.mean];
  throw inputError({ ...(file ? { file } : {}), where: `metadata '${has}'`, problem: `is recorded without '${lacks}'`, fix: 'pass --mean and --std (they override both), or record both in the model' });
}

/**
 * When --mean/--std replace other statistics the model records: a note naming both (undefined when it
 * records none, or the same). Overriding is allowed — a model may record wrong ones — but never silent:
 * the wrong pair costs accuracy without an error.
 */
export function overriddenNormalizationNote(graph: Graph, given: { mean?: readonly number[] | undefined; std?: readonly number[] | undefined }, file: string): string | undefined {
  if (!given.mean || !given.std) return undefined;
  const recorded = readPreprocessing(graph, file).normalization;
  if (!recorded) return undefined;
  const channels = modelChannels(graph);
  const [r, g] = [perChannel(recorded, channels), perChannel({ scale: recorded.scale, mean: [...given.mean], std: [...given.std] }, channels)];
  const same = (a: number[], b: number[]): boolean => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-6);
  if (same(r.mean, g.mean) && same(r.std, g.std)) return undefined;
  return `note: ${file} records mean ${r.mean.join(',')} and std ${r.std.join(',')}; --mean ${g.mean.join(',')} --std ${g.std.join(',')} replace them`;
}

/** The normalization a model records, else CIFAR-10's — GRAYSCALE_NORMALIZATION for a 1-channel model. */
export function normalizationOf(graph: Graph, file?: string): Normalization {
  checkNormalizationPair(graph, file);
  const recorded = readPreprocessing(graph, file).normalization;
  return recorded ? perChannel(recorded, modelChannels(graph)) : defaultNormalization(graph);
}

/** One value for every channel, as torchvision's Normalize broadcasts a one-element mean or std; other lengths as given. */
export function perChannel(n: Normalization, channels: number): Normalization {
  const fit = (v: number[]): number[] => (v.length === 1 && channels > 1 ? new Array<number>(channels).fill(v[0]!) : v);
  return { scale: n.scale, mean: fit(n.mean), std: fit(n.std) };
}

/** What a model that records no mean and std is fed: CIFAR-10's statistics, or GRAYSCALE_NORMALIZATION. */
export function defaultNormalization(graph: Graph): Normalization {
  return modelChannels(graph) === 1 ? GRAYSCALE_NORMALIZATION : CIFAR10_NORMALIZATION;
}

function isShape(v: unknown): v is [number, number, number] {
  return Array.isArray(v) && v.length === 3 && v.every((d) => Number.isInteger(d) && d > 0);
}

function isNumbers(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isFinite(d));
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'string');
}

function isResize(v: unknown): v is 'shorter-side' | 'stretch' | number {
  return v === 'shorter-side' || v === 'stretch' || (Number.isInteger(v) && (v as number) > 0);
}
