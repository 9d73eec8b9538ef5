import { epochOrder, mixSeed } from '../data/batches.js';
import { randomPlacement, randomResizedBox } from '../data/transforms.js';
import { Random } from '../util/random.js';

/**
 * What one training epoch visits: the shuffled order and, per position, a crop placement (or a resized
 * crop's box) and flip.
 * Drawn from the same seeded streams as data/batches.ts (shuffle stream 1, augmentation stream 2), so
 * the engine's on-device batches equal `batches()`'s CPU batches image for image, and an epoch is a
 * pure function of (seed, epoch): nothing random needs saving for a resume.
 */
export interface EpochPlan {
  order: Uint32Array;
  /**
   * Per position of `order`: [top, left, flip] of a padded crop, or [top, left, height, width, flip] of
   * a resized crop's box; undefined without augmentation.
   */
  placements?: Int32Array;
}

export interface EpochAugment {
  /** Zero padding of the random crop (CIFAR recipe: 4); 0 = no crop. */
  crop: number;
  flip: boolean;
  /**
   * A random resized crop instead (torchvision's RandomResizedCrop geometry: a box of minScale–1 of the
   * area and aspect 3/4–4/3 of the image as stored, scaled back to its size); `crop` is then 0.
   */
  resized?: { minScale: number };
}

/** RandomResizedCrop(scale=(0.08, 1)) + RandomHorizontalFlip, cut from the image as stored (not the full photo). */
export const RESIZED_CROP: EpochAugment = { crop: 0, flip: true, resized: { minScale: 0.08 } };

export function planEpoch(count: number, options: { seed: number; epoch: number; augment?: EpochAugment; imageSize?: [number, number] }): EpochPlan {
  const order = epochOrder(count, { shuffleSeed: options.seed, epoch: options.epoch });
  const augment = options.augment;
  if (!augment || (augment.crop === 0 && !augment.flip && !augment.resized)) return { order };
  const rng = new Random(mixSeed(options.seed, options.epoch, 2));
  if (augment.resized) {
    if (!options.imageSize) throw new Error('planEpoch: a resized crop needs the image size');
    const boxes = new Int32Array(5 * count);
    for (let i = 0; i < count; i++) {
      const box = randomResizedBox(rng, options.imageSize, { minScale: augment.resized.minScale, flip: augment.flip });
      boxes.set([box.top, box.left, box.height, box.width, box.flip ? 1 : 0], 5 * i);
    }
    return { order, placements: boxes };
  }
  const placements = new Int32Array(3 * count);
  for (let i = 0; i < count; i++) {
    const p = randomPlacement(rng, { pad: augment.crop, flip: augment.flip });
    placements.set([p.top, p.left, p.flip ? 1 : 0], 3 * i);
  }
  return { order, placements };
}

/** Indices (and placements) of batch `b` of size `size`. */
export function batchOf(plan: EpochPlan, b: number, size: number): { indices: Int32Array; aug?: Int32Array } {
  const from = b * size;
  const indices = Int32Array.from(plan.order.subarray(from, from + size));
  if (!plan.placements) return { indices };
  const stride = plan.placements.length / plan.order.length;
  return { indices, aug: plan.placements.slice(stride * from, stride * (from + size)) };
}
