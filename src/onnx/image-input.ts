/**
 * The image input of an N×C×H×W classifier whose height and width are free (a PyTorch export with
 * dynamic H/W axes). Shape inference counts a symbolic dim as 1, so MACs — and a pruning target set in
 * MACs — are only right once H and W are pinned to the size the model is used at.
 */
import { dataInputs, type Dim, type Graph } from './graph.js';

/**
 * Whether an image input of this shape is channels-last (N×H×W×C, as a deployment export that takes
 * raw pixels often is): a last axis of 1, 3 or 4 channels after a spatial one that cannot be channels.
 */
export function isChannelsLast(shape: readonly Dim[] | undefined): boolean {
  if (!shape || shape.length !== 4) return false;
  const [, h, w, last] = shape;
  const spatial = (d: Dim | undefined): boolean => typeof d !== 'number' || d > 4;
  return typeof last === 'number' && [1, 3, 4].includes(last) && spatial(h) && spatial(w);
}

/** [H, W] of the first data input when both are fixed numbers (N×C×H×W, or N×H×W×C). */
export function fixedImageSize(graph: Graph): [number, number] | undefined {
  const shape = dataInputs(graph)[0]?.shape;
  const [h, w] = isChannelsLast(shape) ? [shape?.[1], shape?.[2]] : [shape?.[2], shape?.[3]];
  return typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined;
}

/** Is the first data input N×C×H×W with a fixed C and a free (symbolic or unknown) H or W? */
export function hasFreeImageSize(graph: Graph): boolean {
  const shape = dataInputs(graph)[0]?.shape;
  return !!shape && shape.length === 4 && typeof shape[1] === 'number' && (typeof shape[2] !== 'number' || typeof shape[3] !== 'number');
}

/** The graph with its image input's H and W fixed at `size` (the batch stays as it is). Pure. */
export function pinImageSize(graph: Graph, size: readonly [number, number]): Graph {
  const input = dataInputs(graph)[0];
  const shape = input?.shape;
  if (!input || !shape || shape.length !== 4) return graph;
  const pinned: Dim[] = [shape[0]!, shape[1]!, size[0], size[1]];
  return { ...graph, inputs: graph.inputs.map((v) => (v === input ? { ...v, shape: pinned } : v)) };
}

/** Benchmark input shapes (batch 1) for a model whose H×W are free, at `size`; undefined for a fixed input. */
export function imageInputShapes(graph: Graph, size: readonly [number, number]): Record<string, number[]> | undefined {
  if (!hasFreeImageSize(graph)) return undefined;
  const input = dataInputs(graph)[0]!;
  return { [input.name]: [1, input.shape![1] as number, size[0], size[1]] };
}

/** `graph` with the input shapes `original` declares (undoes pinImageSize after a pass). Pure. */
export function restoreInputShapes(graph: Graph, original: Graph): Graph {
  const declared = new Map(original.inputs.map((v) => [v.name, v.shape]));
  return {
    ...graph,
    inputs: graph.inputs.map((v) => {
      const shape = declared.get(v.name);
      return declared.has(v.name) ? { name: v.name, dtype: v.dtype, ...(shape ? { shape: [...shape] } : {}) } : v;
    }),
  };
}
