import type { ImageSet } from '../data/types.js';

/**
 * How ranks split work. A global batch (positions [bB, (b+1)B) of the epoch's deterministic shuffle,
 * epoch.ts) is cut into `world` contiguous pieces whose sizes differ by at most one, so over an epoch
 * every image the single-process run would visit is visited by exactly one rank, and the global batch
 * is exactly what the user asked for whatever the rank count.
 */

/** [from, to) of part `rank` when `count` items are cut into `world` near-equal contiguous parts. */
export function shardRange(count: number, rank: number, world: number): [number, number] {
  const base = Math.floor(count / world);
  const extra = count % world;
  const from = rank * base + Math.min(rank, extra);
  return [from, from + base + (rank < extra ? 1 : 0)];
}

export interface BatchSelection {
  indices: Int32Array;
  /** B×3 crop/flip placements (B×5 resized-crop boxes), aligned with `indices`. */
  aug?: Int32Array;
}

/** This rank's part of a global batch (its placements travel with it). */
export function shardBatch<T extends BatchSelection>(batch: T, rank: number, world: number): T {
  const [from, to] = shardRange(batch.indices.length, rank, world);
  const stride = batch.aug ? batch.aug.length / batch.indices.length : 0;
  return {
    ...batch,
    indices: batch.indices.slice(from, to),
    ...(batch.aug ? { aug: batch.aug.slice(stride * from, stride * to) } : {}),
  };
}

/** Images [from, to) of a set, sharing its pixel memory. */
export function sliceImageSet(set: ImageSet, from: number, to: number): ImageSet {
  const [c, h, w] = set.imageShape;
  const size = c * h * w;
  return {
    ...set,
    name: `${set.name}[${from}:${to}]`,
    pixels: set.pixels.subarray(from * size, to * size),
    labels: set.labels.subarray(from, to),
  };
}
