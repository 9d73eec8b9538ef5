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
  /** N labels, each < classes.length (16-bit: up to 65,535 classes). */
  labels: Uint16Array;
}

export function imageCount(set: ImageSet): number {
  return set.labels.length;
}

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

/** [H, W] of a set's images: the size a free-size model runs at on them. */
export function imageSizeOf(set: ImageSet): [number, number] {
  return [set.imageShape[1], set.imageShape[2]];
}

/** Per-channel mean and standard deviation of a set's pixels, in [0, 1] units (what --mean/--std take). */
export function pixelStatistics(set: ImageSet): { mean: number[]; std: number[] } {
  const [c, h, w] = set.imageShape;
  const plane = h * w;
  const [sums, squares] = [new Float64Array(c), new Float64Array(c)];
  for (let image = 0; image < set.labels.length; image++) {
    for (let channel = 0; channel < c; channel++) {
      const start = (image * c + channel) * plane;
      let [sum, square] = [0, 0];
      for (let i = start; i < start + plane; i++) {
        const v = set.pixels[i]!;
        sum += v;
        square += v * v;
      }
      sums[channel]! += sum;
      squares[channel]! += square;
    }
  }
  const n = Math.max(1, set.labels.length * plane);
  const mean = Array.from(sums, (s) => s / n / 255);
  return { mean, std: Array.from(squares, (q, i) => Math.sqrt(Math.max(0, q / n / 255 ** 2 - mean[i]! ** 2))) };
}

/** Pixel → model input: x = (pixel * scale - mean[c]) / std[c]. */
export interface Normalization {
  scale: number;
  mean: number[];
  std: number[];
}

/**
 * A normalization given in a program must say all of x = (pixel · scale − mean) / std: without `scale`
 * every input was NaN, and every image scored NaN (top-1 0) with no error.
 */
export function checkNormalization(n: Normalization, option = 'normalization'): void {
  const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  const problem = !finite(n.scale) || n.scale <= 0 ? `scale must be a number > 0 (pixels × scale: 1/255 for the usual mean and std in [0, 1]), got ${String(n.scale)}`
    : !Array.isArray(n.mean) || n.mean.length === 0 || !n.mean.every(finite) ? `mean must be one number per channel (or one for all), got ${JSON.stringify(n.mean)}`
    : !Array.isArray(n.std) || n.std.length === 0 || !n.std.every((v) => finite(v) && v > 0) ? `std must be numbers > 0, one per channel (or one for all), got ${JSON.stringify(n.std)}`
    : undefined;
  if (problem) throw inputError({ where: option, problem, fix: "e.g. { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } (torchvision's ImageNet statistics)" });
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
  labels: Uint16Array;
  /** Index of each image in its ImageSet. */
  indices: Uint32Array;
}
