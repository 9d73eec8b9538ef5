import { CIFAR10_NORMALIZATION, GRAYSCALE_NORMALIZATION, type Normalization } from '../data/types.js';
import { option, SlimError } from '../errors.js';
import type { Graph } from '../onnx/graph.js';
import { formatCount } from '../report/format.js';
import { IMAGENET_NORMALIZATION, METADATA_KEYS, preprocessingMetadata } from './metadata.js';
import { buildResNet, resnetInputSize, resnetParameterCount, type ResNetDepth, type ResNetStem } from './resnet.js';
import { didYouMean } from '../util/suggest.js';
import { withStepRecord } from '../onnx/provenance.js';

export { countParameters } from './params.js';
export { METADATA_KEYS, IMAGENET_NORMALIZATION, readPreprocessing, type Preprocessing } from './metadata.js';

/** The models `slim zoo` can build, by name. */
export interface ZooEntry {
  summary: string;
  depth: ResNetDepth;
  stem: ResNetStem;
  defaultClasses: number;
  normalization: Normalization;
}

const cifar = (depth: ResNetDepth, block: string): ZooEntry => ({
  summary: `ResNet-${depth} (${block}), CIFAR stem: 3×3/1 conv, no max pool, 32×32 input`,
  depth,
  stem: 'cifar',
  defaultClasses: 10,
  normalization: CIFAR10_NORMALIZATION,
});

const imagenet = (depth: ResNetDepth, block: string): ZooEntry => ({
  summary: `ResNet-${depth} (${block}), ImageNet stem: 7×7/2 conv, 3×3/2 max pool, 224×224 input`,
  depth,
  stem: 'imagenet',
  defaultClasses: 1000,
  normalization: IMAGENET_NORMALIZATION,
});

export const ZOO = {
  'resnet18-cifar': cifar(18, 'BasicBlock'),
  'resnet34-cifar': cifar(34, 'BasicBlock'),
  'resnet50-cifar': cifar(50, 'Bottleneck'),
  'resnet18-imagenet': imagenet(18, 'BasicBlock'),
  'resnet34-imagenet': imagenet(34, 'BasicBlock'),
  'resnet50-imagenet': imagenet(50, 'Bottleneck'),
} as const satisfies Record<string, ZooEntry>;

export type ZooName = keyof typeof ZOO;

export interface ZooOptions {
  /** Default 10 for cifar names, 1000 for imagenet names; at least 2. */
  classes?: number;
  /** Channel multiplier, > 0; default 1. */
  width?: number;
  /** Weight-init seed, an integer in [0, 2^32); default 0. */
  seed?: number;
  /** γ = 0 for the last BN of each residual block (torchvision's zero_init_residual); default false. */
  zeroInitResidual?: boolean;
  /** Recorded in metadata as `slimkit.classes`; must have `classes` entries. */
  classNames?: string[];
  /** Image channels: 3 (RGB, default) or 1 — a grayscale model, normalized with GRAYSCALE_NORMALIZATION. */
  channels?: number;
  /** [H, W] of the input; default: the stem's (32×32 CIFAR, 224×224 ImageNet). */
  imageSize?: [number, number];
}

/** [H, W] of a zoo model's input, without building it. */
export function zooInputSize(name: ZooName): [number, number] {
  const size = resnetInputSize(ZOO[name].stem);
  return [size, size];
}

export function isZooName(name: string): name is ZooName {
  return Object.hasOwn(ZOO, name);
}

/**
 * Build a zoo model with fresh torchvision-style weights. Its metadata records the input size,
 * normalization and the options used, for eval and deploy to read later.
 * Throws a usage error for an unknown name or invalid options.
 */
export function buildZooModel(name: ZooName | (string & {}), options: ZooOptions = {}): Graph {
  const entry = zooEntry(name);
  const classes = options.classes ?? options.classNames?.length ?? entry.defaultClasses;
  const width = options.width ?? 1;
  const seed = options.seed ?? 0;
  const zeroInitResidual = options.zeroInitResidual ?? false;
  const channels = options.channels ?? 3;
  validate({ classes, width, seed, classNames: options.classNames, channels });
  checkSize(name, entry, classes, width);

  const size = resnetInputSize(entry.stem);
  const [imageHeight, imageWidth] = options.imageSize ?? [size, size];
  const preprocessing = preprocessingMetadata({
    inputShape: [channels, imageHeight, imageWidth],
    normalization: channels === 1 ? GRAYSCALE_NORMALIZATION : entry.normalization,
    ...(options.classNames ? { classNames: options.classNames } : {}),
  });
  const metadata = withStepRecord(preprocessing, METADATA_KEYS.zoo, { name, classes, width, seed, zero_init_residual: zeroInitResidual, ...(channels !== 3 ? { channels } : {}), ...(imageHeight !== size || imageWidth !== size ? { image_size: [imageHeight, imageWidth] } : {}) });
  const graph = buildResNet({ depth: entry.depth, stem: entry.stem, classes, width, seed, zeroInitResidual, inChannels: channels, metadata, ...(options.imageSize ? { imageSize: options.imageSize } : {}) });
  graph.name = name;
  return graph;
}

export interface ZooDescription {
  name: ZooName;
  summary: string;
  /** [channels, height, width]. */
  inputShape: [number, number, number];
  /** Height = width of the (square) input. */
  inputSize: number;
  /** Default number of classes. */
  classes: number;
  /** Learnable parameters at width 1 with the default classes (BN running stats excluded). */
  params: number;
}

/** One row per zoo model, for `slim zoo --list`. Cheap: no weights are allocated. */
export function describeZoo(): ZooDescription[] {
  return (Object.keys(ZOO) as ZooName[]).map((name) => {
    const e: ZooEntry = ZOO[name];
    const size = resnetInputSize(e.stem);
    return {
      name,
      summary: e.summary,
      inputShape: [3, size, size],
      inputSize: size,
      classes: e.defaultClasses,
      params: resnetParameterCount({ depth: e.depth, stem: e.stem, classes: e.defaultClasses, width: 1, zeroInitResidual: false }),
    };
  });
}

function zooEntry(name: string): ZooEntry {
  if (isZooName(name)) return ZOO[name];
  const names = Object.keys(ZOO);
  const hint = didYouMean(name, names);
  return throwUsage('model name', `unknown zoo model '${name}'`, `${hint}known models: ${names.join(', ')}`);
}

function validate(o: { classes: number; width: number; seed: number; classNames: string[] | undefined; channels: number }): void {
  if (o.channels !== 1 && o.channels !== 3) {
    throwUsage(option('--channels'), `must be 3 (RGB) or 1 (grayscale), got ${o.channels}`, `pass ${option('--channels', 1)} for grayscale images`);
  }
  if (!Number.isInteger(o.classes) || o.classes < 2) {
    throwUsage(option('--classes'), `must be an integer ≥ 2, got ${o.classes}`, `pass the number of classes in your data set, e.g. ${option('--classes', 10)}`);
  }
  if (!Number.isFinite(o.width) || o.width <= 0) {
    throwUsage(option('--width'), `must be a number > 0, got ${o.width}`, 'use 1 for the standard network or e.g. 0.25 for a small one');
  }
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed >= 2 ** 32) {
    throwUsage(option('--seed'), `must be an integer in [0, 2^32), got ${o.seed}`, `pass e.g. ${option('--seed', 0)}`);
  }
  if (o.classNames && o.classNames.length !== o.classes) {
    throwUsage('class names', `${o.classNames.length} class names given for ${o.classes} classes`, 'give one name per class');
  }
}

/** float32 weights one ONNX file can hold: protobuf addresses at most 2 GiB. */
const MAX_WEIGHT_BYTES = 2 ** 31 - 2 ** 24;

/** Refuse a width whose weights no ONNX file can hold, before allocating them (width 100 would be 446 GB). */
function checkSize(name: string, entry: ZooEntry, classes: number, width: number): void {
  const bytesAt = (w: number): number => 4 * resnetParameterCount({ depth: entry.depth, stem: entry.stem, classes, width: w, zeroInitResidual: false });
  if (bytesAt(width) <= MAX_WEIGHT_BYTES) return;
  // Parameters grow with width²: bisect for the widest network that fits, to two decimals.
  let [lo, hi] = [0, width];
  while (hi - lo > 0.005) {
    const mid = (lo + hi) / 2;
    if (bytesAt(mid) <= MAX_WEIGHT_BYTES) lo = mid;
    else hi = mid;
  }
  const widest = Math.floor(lo * 100) / 100;
  const problem = `${name} at width ${width} with ${classes} classes would have ${formatCount(bytesAt(width) / 4)} parameters (${(bytesAt(width) / 2 ** 30).toFixed(2)} GiB of float32), more than an ONNX file can hold (2 GiB)`;
  // At any usable width the classifier alone can be too big: then the class count is what to change.
  if (widest < 0.01) throwUsage(option('--classes'), problem, 'use fewer classes');
  throwUsage(option('--width'), problem, `use a width ≤ ${widest}`);
}

function throwUsage(where: string, problem: string, fix: string): never {
  throw new SlimError({ where, problem, fix }, 'usage');
}

