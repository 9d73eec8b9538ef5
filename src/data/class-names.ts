/**
 * A data set's labels are positions in its class list (an image folder's class folders in code-point
 * order, CIFAR-10's official order); a model's scores are positions in the list it was trained on,
 * which it records as `slimkit.classes`. Scoring one against the other is right only when the two
 * lists agree, so every command that scores or trains a model on labelled data matches them here first.
 */
import type { ImageSet } from './types.js';

export type ClassMatch<T extends ImageSet> =
  /** Same names, same order: the set as it is. */
  | { kind: 'same'; set: T }
  /** Same names in another order: the set relabelled so label i is the model's class i. */
  | { kind: 'reordered'; set: T }
  /** Some of the model's names (a subset of its classes), relabelled the same way. */
  | { kind: 'subset'; set: T }
  /** Other names: those only the data has, and those only the model has. */
  | { kind: 'different'; onlyData: string[]; onlyModel: string[] };

/** How `set`'s classes meet the class names a model records, in the model's order. */
export function matchClasses<T extends ImageSet>(set: T, modelClasses: readonly string[]): ClassMatch<T> {
  const data = set.classes;
  if (data.length === modelClasses.length && data.every((name, i) => name === modelClasses[i])) return { kind: 'same', set };
  // By lookup, not by search: ImageNet-21k's 21,841 names against each other are 477 M comparisons.
  const modelIndex = new Map(modelClasses.map((name, i) => [name, i]));
  const dataNames = new Set(data);
  const onlyData = data.filter((name) => !modelIndex.has(name));
  const onlyModel = modelClasses.filter((name) => !dataNames.has(name));
  // Duplicate names in a model's list cannot say which output a folder is: taken as a difference.
  if (onlyData.length > 0 || modelIndex.size !== modelClasses.length || dataNames.size !== data.length) {
    return { kind: 'different', onlyData, onlyModel };
  }
  const toModel = data.map((name) => modelIndex.get(name)!);
  const relabelled = { ...set, classes: [...modelClasses], labels: set.labels.map((label) => toModel[label]!) };
  return onlyModel.length > 0 ? { kind: 'subset', set: relabelled } : { kind: 'reordered', set: relabelled };
}
