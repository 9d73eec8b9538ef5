import { epochOrder, mixSeed } from '../data/batches.js';
import { randomPlacement } from '../data/transforms.js';
import { Random } from '../util/random.js';

/**
 * What one training epoch visits: the shuffled order and, per position, a crop placement and flip.
 * Drawn from the same seeded streams as data/batches.ts (shuffle stream 1, augmentation stream 2), so
 * the engine's on-device batches equal `batches()`'s CPU batches image for image, and an epoch is a
 * pure function of (seed, epoch): nothing random needs saving for a resume.
 */
export interface EpochPlan {
  order: Uint32Array;
  /** [top, left, flip] per position of `order`, or undefined without augmentation. */
  placements?: Int32Array;
}

export interface EpochAugment {
  /** Zero padding of the random crop (CIFAR recipe: 4); 0 = no crop. */
  crop: number;
  flip: boolean;
}

export function planEpoch(count: number, options: { seed: number; epoch: number; augment?: EpochAugment }): EpochPlan {
  const order = epochOrder(count, { shuffleSeed: options.seed, epoch: options.epoch });
  const augment = options.augment;
  if (!augment || (augment.crop === 0 && !augment.flip)) return { order };
  const rng = new Random(mixSeed(options.seed, options.epoch, 2));
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
  return plan.placements ? { indices, aug: plan.placements.slice(3 * from, 3 * (from + size)) } : { indices };
}
