/** Image sets → model feeds for calibration and analysis, in bounded-size batches. */
import { option, usageError } from '../../errors.js';
import { batches } from '../../data/batches.js';
import { subset } from '../../data/subsets.js';
import type { ImageSet, Normalization } from '../../data/types.js';
import { Random } from '../../util/random.js';
import type { Feeds } from './calibrate/index.js';

export interface ImageFeedOptions {
  inputName: string;
  normalization: Normalization;
  batchSize: number;
}

/** Normalized float32 batches of the whole set; iterable any number of times (each pass starts over). */
export function imageFeeds(set: ImageSet, options: ImageFeedOptions): Iterable<Feeds> {
  return {
    *[Symbol.iterator]() {
      for (const b of batches(set, { batchSize: options.batchSize, normalization: options.normalization })) {
        yield { [options.inputName]: { dtype: 'float32', dims: b.dims, data: b.images } };
      }
    },
  };
}

/** `samples` images drawn at random (seeded) from the set, kept in the set's order. */
export function sampleImages(set: ImageSet, samples: number, seed: number): ImageSet {
  if (!Number.isInteger(samples) || samples < 1) throw usageError(`${option('--samples')} must be a whole number ≥ 1, got ${samples}`);
  const n = set.labels.length;
  if (samples >= n) return set;
  const chosen = Array.from(new Random(seed).permutation(n).subarray(0, samples)).sort((a, b) => a - b);
  return subset(set, chosen, `${set.name}[${samples} random, seed ${seed}]`);
}

/**
 * `count` images that sampleImages(set, samples, seed) did not choose (the next ones in the same random
 * order): held-out images for judging a calibration without touching test data.
 */
export function heldOutImages(set: ImageSet, samples: number, count: number, seed: number): ImageSet {
  const n = set.labels.length;
  const start = Math.min(samples, n);
  const chosen = Array.from(new Random(seed).permutation(n).subarray(start, Math.min(n, start + count))).sort((a, b) => a - b);
  if (chosen.length === 0) throw usageError(`no images are left for held-out checks after ${samples} calibration images (the set has ${n})`, 'use fewer --samples or a larger calibration set');
  return subset(set, chosen, `${set.name}[${chosen.length} held out, seed ${seed}]`);
}

/**
 * A batch size whose tapped activations stay under `budgetBytes` (default 128 MB), at most `max`: the
 * peak memory of calibration is one batch of taps (twice: ORT's copy and the JS one) plus the
 * fixed-size histograms.
 */
export function batchSizeFor(bytesPerSample: number, options: { budgetBytes?: number; max?: number } = {}): number {
  const budget = options.budgetBytes ?? 128 * 2 ** 20;
  const max = options.max ?? 64;
  return Math.max(1, Math.min(max, Math.floor(budget / Math.max(1, bytesPerSample))));
}
