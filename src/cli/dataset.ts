import { stat } from 'node:fs/promises';
import { usageError } from '../errors.js';
import { loadCifar10 } from '../data/cifar10.js';
import { loadImageFolder } from '../data/image-folder.js';
import { CIFAR10_NORMALIZATION, type ImageSet, type Normalization } from '../data/types.js';
import { dataInputs, type Graph } from '../onnx/graph.js';

export interface DataOptions {
  data?: string;
  dataDir?: string;
  split?: string;
  limit?: number;
  mean?: number[];
  std?: number[];
}

/** The [H, W] a model's first image input expects, when its shape says. */
export function modelInputSize(graph: Graph): [number, number] | undefined {
  const shape = dataInputs(graph)[0]?.shape;
  const [h, w] = [shape?.[2], shape?.[3]];
  return typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined;
}

/** The evaluation set named by --data: CIFAR-10 (a split) or an image folder resized to the model's input. */
export async function loadDataset(options: DataOptions, inputSize?: [number, number]): Promise<ImageSet> {
  const name = options.data;
  if (!name) throw usageError('no data set given', "pass --data cifar10 or --data <folder>");
  const limit = options.limit !== undefined ? { limit: options.limit } : {};
  if (name.toLowerCase() === 'cifar10' || name.toLowerCase() === 'cifar-10') {
    const split = options.split ?? 'test';
    if (split !== 'test' && split !== 'train') throw usageError(`--split must be 'test' or 'train', got '${split}'`);
    return loadCifar10(split, { ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...limit });
  }
  const info = await stat(name).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw usageError(`--data '${name}' is neither 'cifar10' nor a folder`, 'pass --data cifar10 or a folder with one subfolder of images per class');
  }
  return loadImageFolder(name, { ...(inputSize ? { size: inputSize } : {}), ...limit });
}

function metadataNumbers(graph: Graph, key: string): number[] | undefined {
  const raw = graph.metadata[key];
  if (!raw) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return Array.isArray(value) && value.every((v) => typeof v === 'number') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Preprocessing: flags first, then what the model's metadata records, then the CIFAR-10 statistics. */
export function normalizationFor(graph: Graph, options: DataOptions): Normalization {
  return {
    scale: CIFAR10_NORMALIZATION.scale,
    mean: options.mean ?? metadataNumbers(graph, 'slimkit.mean') ?? CIFAR10_NORMALIZATION.mean,
    std: options.std ?? metadataNumbers(graph, 'slimkit.std') ?? CIFAR10_NORMALIZATION.std,
  };
}
