/**
 * An image classification set held in memory as raw 8-bit pixels, planar (N×C×H×W, the CIFAR-10
 * binary layout). Raw bytes keep CIFAR-10 train at 150 MB and let the training engine copy the
 * whole set to the GPU once and augment there.
 */
import { inputError } from '../errors.js';
export interface ImageSet {
  /** e.g. "cifar10/test" or the folder path. */
  name: string;
  /** Class names, index = label. */
  classes: string[];
  /** [C, H, W] of each image. */
  imageShape: [number, number, number];
  /** N×C×H×W bytes. */
  pixels: Uint8Array;
  /** N labels, each < classes.length. */
  labels: Uint8Array;
}

export function imageCount(set: ImageSet): number {
  return set.labels.length;
}

/** [H, W] of a set's images: the size a free-size model runs at on them. */
/**
 * An ImageSet built or sliced by hand must hold what it says: N·C·H·W pixel bytes for its N labels, each
 * label one of its classes. A short pixel buffer was scored as N images of NaN (top-1 0 %), a label past
 * the classes failed inside a training step.
 */
export function checkImageSet(set: ImageSet, role: string): void {
  const [c, h, w] = set.imageShape;
  const n = set.labels.length;
  const where = `${role} images (${set.name})`;
  if (set.pixels.length !== n * c * h * w) {
    throw inputError({ where, problem: `hold ${set.pixels.length} pixel bytes for ${n} labels of ${c}×${h}×${w} images (${n * c * h * w} expected)`, fix: 'slice pixels and labels together (subset / take of slimkit/data do)' });
  }
  const classes = set.classes.length;
  const bad = set.labels.findIndex((label) => label >= classes);
  if (bad >= 0) throw inputError({ where, problem: `image ${bad} has label ${set.labels[bad]}, but there are ${classes} classes`, fix: 'give every class a name in classes, labels counting from 0' });
}

export function imageSizeOf(set: ImageSet): [number, number] {
  return [set.imageShape[1], set.imageShape[2]];
}

/** Pixel → model input: x = (pixel * scale - mean[c]) / std[c]. */
export interface Normalization {
  scale: number;
  mean: number[];
  std: number[];
}

/** The CIFAR-10 training-set statistics used by slimkit's zoo models and recipes. */
export const CIFAR10_NORMALIZATION: Normalization = {
  scale: 1 / 255,
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.247, 0.2435, 0.2616],
};

/**
 * What a grayscale model that records no statistics is fed: there is no common standard (MNIST's
 * 0.1307 / 0.3081 is one of many), so pixels are mapped to [−1, 1] — torchvision's Normalize((0.5,), (0.5,)).
 */
export const GRAYSCALE_NORMALIZATION: Normalization = {
  scale: 1 / 255,
  mean: [0.5],
  std: [0.5],
};

/** A batch ready for a model: float32 NCHW images and their labels. */
export interface Batch {
  images: Float32Array;
  dims: [number, number, number, number];
  labels: Uint8Array;
  /** Index of each image in its ImageSet. */
  indices: Uint32Array;
}
