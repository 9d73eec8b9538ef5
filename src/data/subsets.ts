import { usageError } from '../errors.js';
import { Random } from '../util/random.js';
import type { ImageSet } from './types.js';

/** A new set holding copies of the images at `indices` (in that order). */
export function subset(set: ImageSet, indices: ArrayLike<number>, name = `${set.name}[subset]`): ImageSet {
  const [c, h, w] = set.imageShape;
  const size = c * h * w;
  const n = set.labels.length;
  const pixels = new Uint8Array(indices.length * size);
  const labels = new Uint16Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (!Number.isInteger(index) || index < 0 || index >= n) {
      throw usageError(`subset index ${index} is outside ${set.name} (0..${n - 1})`);
    }
    pixels.set(set.pixels.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = set.labels[index]!;
  }
  return { name, classes: [...set.classes], imageShape: [c, h, w], pixels, labels };
}

/** The first n images (all of them when n ≥ the set's size). */
export function take(set: ImageSet, n: number): ImageSet {
  const count = Math.min(n, set.labels.length);
  return subset(set, Uint32Array.from({ length: count }, (_, i) => i), `${set.name}[:${count}]`);
}

/**
 * Whether the set lists one class after another (an image folder's order, also after its classes were
 * renumbered to a model's), so that its first images are a few classes' only: each label is one run.
 */
export function listedByClass(set: ImageSet): boolean {
  const ended = new Set<number>();
  for (let i = 1; i < set.labels.length; i++) {
    const [previous, label] = [set.labels[i - 1]!, set.labels[i]!];
    if (label === previous) continue;
    if (ended.has(label)) return false;
    ended.add(previous);
  }
  return set.classes.length > 1;
}

/**
 * n images taken round-robin over the classes — the first of each class, then the second, … — kept in
 * the set's order: what an image folder's --limit loads. An image folder lists one class after another,
 * so its first n images would cover only the first classes.
 */
export function takeAcrossClasses(set: ImageSet, n: number): ImageSet {
  const byClass: number[][] = set.classes.map(() => []);
  for (let i = 0; i < set.labels.length; i++) byClass[set.labels[i]!]?.push(i);
  const chosen: number[] = [];
  const want = Math.min(n, byClass.reduce((sum, indices) => sum + indices.length, 0));
  for (let round = 0; chosen.length < want; round++) {
    for (const indices of byClass) if (round < indices.length && chosen.length < want) chosen.push(indices[round]!);
  }
  return subset(set, Uint32Array.from(chosen.sort((a, b) => a - b)), `${set.name}[${chosen.length} across classes]`);
}

/**
 * `perClass` images of every class drawn at random (seeded), kept in the set's original order — a
 * balanced calibration or demo set. A class with fewer images contributes all it has.
 */
export function stratifiedSubset(set: ImageSet, perClass: number, seed: number): ImageSet {
  if (!Number.isInteger(perClass) || perClass < 1) throw usageError(`images per class must be a whole number ≥ 1, got ${perClass}`);
  const byClass: number[][] = set.classes.map(() => []);
  for (let i = 0; i < set.labels.length; i++) byClass[set.labels[i]!]?.push(i);
  const rng = new Random(seed);
  const chosen: number[] = [];
  for (const members of byClass) {
    const permutation = rng.permutation(members.length);
    for (let k = 0; k < Math.min(perClass, members.length); k++) chosen.push(members[permutation[k]!]!);
  }
  chosen.sort((a, b) => a - b);
  return subset(set, chosen, `${set.name}[${perClass}/class]`);
}
