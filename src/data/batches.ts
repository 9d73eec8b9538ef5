import { usageError } from '../errors.js';
import { Random } from '../util/random.js';
import { cropWithPadding, normalizeInto, randomPlacement, randomResizedBox, resizedCropInto } from './transforms.js';
import type { Batch, ImageSet, Normalization } from './types.js';

export interface AugmentOptions {
  /** Zero padding for a random crop back to the image size (torchvision RandomCrop(H, padding=crop)); 0/undefined = no crop. */
  crop?: number;
  /** Random horizontal flip with probability ½. */
  flip?: boolean;
  /** A random resized crop instead of the padded one (randomResizedBox: minScale–1 of the area). */
  resized?: { minScale: number };
  /** Seed of the augmentation stream (combined with the epoch, so each epoch differs). */
  seed: number;
}

export interface BatchOptions {
  batchSize: number;
  normalization: Normalization;
  /** Seed of a per-epoch permutation; undefined keeps the set's order. */
  shuffleSeed?: number;
  /** Epoch number: with the seeds, fixes the order and the augmentation (default 0). */
  epoch?: number;
  augment?: AugmentOptions;
  /** Drop a final batch smaller than batchSize (training), instead of yielding it (evaluation). */
  dropLast?: boolean;
  /** Use only the first `limit` images of the epoch's order. */
  limit?: number;
}

/**
 * Float32 NCHW batches of a set, normalized and optionally augmented. Each batch owns fresh
 * buffers, safe to keep or hand to an async consumer. Measured on CIFAR-10 test (10k images, one
 * core): ~75 ms per pass allocating vs ~50 ms reusing one buffer — 2.5 µs an image, noise next to
 * any model's forward pass, so not worth the aliasing hazard.
 * Same set + options ⇒ identical batches, bit for bit.
 */
export function* batches(set: ImageSet, options: BatchOptions): Generator<Batch> {
  const order = epochOrder(set.labels.length, options);
  const count = imagesPerEpoch(set, options);
  const { batchSize, normalization, augment } = options;
  const shape = set.imageShape;
  const imageSize = shape[0] * shape[1] * shape[2];
  const pad = augment?.crop ?? 0;
  const flip = augment?.flip ?? false;
  const resized = augment?.resized;
  const rng = augment && (pad > 0 || flip || resized) ? new Random(mixSeed(augment.seed, options.epoch ?? 0, 2)) : undefined;
  const scratch = new Uint8Array(imageSize);

  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    if (n < batchSize && options.dropLast) return;
    const images = new Float32Array(n * imageSize);
    const labels = new Uint16Array(n);
    const indices = order.slice(start, start + n);
    for (let i = 0; i < n; i++) {
      const index = indices[i]!;
      labels[i] = set.labels[index]!;
      if (rng && resized) {
        const box = randomResizedBox(rng, [shape[1], shape[2]], { minScale: resized.minScale, flip });
        resizedCropInto(images, i * imageSize, set.pixels, index * imageSize, shape, box, normalization);
      } else if (rng) {
        const placement = randomPlacement(rng, { pad, flip });
        cropWithPadding({ src: set.pixels, srcOffset: index * imageSize, out: scratch, shape, pad, placement });
        normalizeInto(images, i * imageSize, scratch, 0, shape, normalization);
      } else {
        normalizeInto(images, i * imageSize, set.pixels, index * imageSize, shape, normalization);
      }
    }
    yield { images, dims: [n, shape[0], shape[1], shape[2]], labels, indices };
  }
}

/** How many batches `batches(set, options)` yields. */
export function batchCount(set: ImageSet, options: Pick<BatchOptions, 'batchSize' | 'dropLast' | 'limit'>): number {
  const count = imagesPerEpoch(set, options);
  return options.dropLast ? Math.floor(count / options.batchSize) : Math.ceil(count / options.batchSize);
}

/** The order images are visited in an epoch: 0..n-1, or a permutation fixed by (shuffleSeed, epoch). */
export function epochOrder(count: number, options: Pick<BatchOptions, 'shuffleSeed' | 'epoch'>): Uint32Array {
  if (options.shuffleSeed === undefined) return Uint32Array.from({ length: count }, (_, i) => i);
  return new Random(mixSeed(options.shuffleSeed, options.epoch ?? 0, 1)).permutation(count);
}

function imagesPerEpoch(set: ImageSet, options: Pick<BatchOptions, 'batchSize' | 'limit'>): number {
  const { batchSize, limit } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw usageError(`batch size must be a whole number ≥ 1, got ${batchSize}`, 'pass e.g. --batch-size 128');
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw usageError(`limit must be a whole number ≥ 0, got ${limit}`);
  }
  return Math.min(set.labels.length, limit ?? Infinity);
}

/** One 32-bit seed from (seed, epoch, stream), so shuffle and augmentation streams never coincide. */
export function mixSeed(seed: number, epoch: number, stream: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ (epoch >>> 0), 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ Math.imul(stream, 0x27d4eb2d), 0x165667b1);
  return (h ^ (h >>> 15)) >>> 0;
}
