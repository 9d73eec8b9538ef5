/**
 * The image input of a classifier: N×C×H×W, or N×H×W×C for a model that takes raw channels-last
 * pixels and moves them itself. Its height and width may be free (a PyTorch export with dynamic H/W
 * axes): shape inference counts a symbolic dim as 1, so MACs — and a pruning target set in MACs — are
 * only right once H and W are pinned to the size the model is used at.
 */
import { inputError, SlimError, usageError } from '../errors.js';
import { dataInputs, type Dim, type Graph, type Node } from './graph.js';
import { inferShapes } from './shape-inference.js';
import { opDefFor } from '../ops/registry.js';

/** The fix for a model with several inputs: what every command that feeds images says. */
export const ONE_INPUT_FIX = 'export the classifier with the image as its only input (make the other inputs constants inside the model, e.g. wrap it in a torch module that supplies them)';

/** Refuses a model that takes more than one input (or none): `purpose` feeds it images alone. */
export function requireOneInput(inputs: readonly { name: string }[], file: string, purpose: string): void {
  if (inputs.length === 1) return;
  throw inputError({ file, problem: `takes ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); ${purpose} feeds a classifier one image input`, fix: ONE_INPUT_FIX });
}

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

/** Ops that keep each pixel's channels where they are: what a model's own preprocessing does before moving them. */
const PER_PIXEL_OPS = new Set(['Cast', 'Identity', 'Add', 'Sub', 'Mul', 'Div']);

/**
 * Whether the graph's image input is channels-last: shaped like it (isChannelsLast) and moved to
 * N×C×H×W by a Transpose [0, 3, 1, 2] right away or after per-pixel steps (a Cast, scaling) — ONNX
 * convolutions take N×C×H×W, so a channels-last model must. The shape alone would take an N×C×H×W
 * input 4 pixels wide for one.
 */
export function takesChannelsLast(graph: Graph): boolean {
  const input = dataInputs(graph)[0];
  if (!input || !isChannelsLast(input.shape)) return false;
  const readers = (value: string): Node[] => graph.nodes.filter((n) => n.inputs.includes(value));
  const toNchw = (n: Node): boolean => n.opType === 'Transpose' && String(n.attributes['perm']?.value) === '0,3,1,2';
  let value = input.name;
  // A handful of steps at most: x.float() / 255, − mean, / std.
  for (let step = 0; step < 16; step++) {
    const next = readers(value);
    if (next.some(toNchw)) return true;
    const pixelwise = next.find((n) => PER_PIXEL_OPS.has(n.opType) && (n.domain === '' || n.domain === 'ai.onnx'));
    if (!pixelwise?.outputs[0]) return false;
    value = pixelwise.outputs[0];
  }
  return false;
}

/**
 * How the image input takes raw pixels when it does — a dtype other than float32, or channels-last: such
 * a model preprocesses them itself, so slimkit's normalized float32 N×C×H×W batches do not fit it.
 * Undefined for a plain N×C×H×W float32 input. `text` reads like "uint8 N×H×W×C".
 */
export function rawPixelInput(graph: Graph): { dtype: string; layout: 'N×H×W×C' | 'N×C×H×W'; text: string } | undefined {
  const input = dataInputs(graph)[0];
  if (!input) return undefined;
  const channelsLast = takesChannelsLast(graph);
  if (input.dtype === 'float32' && !channelsLast) return undefined;
  const layout = channelsLast ? 'N×H×W×C' : 'N×C×H×W';
  return { dtype: input.dtype, layout, text: `${input.dtype} ${layout}` };
}

/** Positions of C, H and W in the graph's image input. */
export function imageAxes(graph: Graph): { c: number; h: number; w: number } {
  return takesChannelsLast(graph) ? { c: 3, h: 1, w: 2 } : { c: 1, h: 2, w: 3 };
}

/** [H, W] of the first data input when both are fixed numbers. */
export function fixedImageSize(graph: Graph): [number, number] | undefined {
  const shape = dataInputs(graph)[0]?.shape;
  const { h, w } = imageAxes(graph);
  const [height, width] = [shape?.[h], shape?.[w]];
  return typeof height === 'number' && typeof width === 'number' ? [height, width] : undefined;
}

/** Is the first data input an image (rank 4) with a fixed C and a free (symbolic or unknown) H or W? */
export function hasFreeImageSize(graph: Graph): boolean {
  const shape = dataInputs(graph)[0]?.shape;
  const { c, h, w } = imageAxes(graph);
  return !!shape && shape.length === 4 && typeof shape[c] === 'number' && (typeof shape[h] !== 'number' || typeof shape[w] !== 'number');
}

/** The graph with its image input's H and W fixed at `size` (the batch stays as it is). Pure. */
export function pinImageSize(graph: Graph, size: readonly [number, number]): Graph {
  const input = dataInputs(graph)[0];
  const shape = input?.shape;
  if (!input || !shape || shape.length !== 4) return graph;
  const { h, w } = imageAxes(graph);
  const pinned: Dim[] = [...shape];
  [pinned[h], pinned[w]] = [size[0], size[1]];
  return { ...graph, inputs: graph.inputs.map((v) => (v === input ? { ...v, shape: pinned } : v)) };
}

/** Whether every node accepts the image input pinned at `size` (a window must fit what reaches it). */
function fitsImageSize(graph: Graph, size: readonly [number, number]): boolean {
  try {
    inferShapes(pinImageSize(graph, size));
    return true;
  } catch (e) {
    if (e instanceof SlimError) return false;
    throw e;
  }
}

/**
 * Refuses an `--image-size` a model with a free height and width cannot take (a kernel or pool window
 * would not fit what reaches it; a Flatten before the classifier fixes the size), naming the square
 * size(s) it does take: the smallest, and whether larger ones fit too.
 */
export function checkImageSizeFits(graph: Graph, size: readonly [number, number], file: string, o: { cifar?: boolean } = {}): void {
  // Shape inference stops at an op slimkit has no definition for: it cannot tell, and ONNX Runtime will
  // (a trial's free-size Resize model was refused at every size, and runs at any).
  if (graph.nodes.some((n) => !opDefFor(n))) return;
  if (!hasFreeImageSize(graph) || fitsImageSize(graph, size)) return;
  const fits = (side: number): boolean => fitsImageSize(graph, [side, side]);
  // `cifar`: no --image-size was given; the size is CIFAR-10's, which cannot be resized.
  let problem = o.cifar ? `CIFAR-10's ${size.join('×')} images (no --image-size given, none recorded) do not fit this model` : `--image-size ${size.join('×')} does not fit this model`;
  try {
    inferShapes(pinImageSize(graph, size));
  } catch (e) {
    if (e instanceof SlimError) problem += ` (${[e.parts.where, e.parts.problem].filter(Boolean).join(': ')})`;
  }
  // Powers of two first (cheap, and what most nets take), then every side up to 512 (a 28×28 MNIST export).
  let found: number | undefined;
  for (let side = 1; side <= 4096 && found === undefined; side *= 2) if (fits(side)) found = side;
  for (let side = 1; side <= 512 && found === undefined; side++) if (fits(side)) found = side;
  if (found === undefined) throw usageError(`${file}: ${problem}, and no square size up to 512 does`, 'check the exporter and opset that produced it');
  // The smallest that fits, below the first found (sizes that fit are a range for most nets).
  let [fails, smallest] = [0, found];
  for (let side = Math.floor(found / 2); side > 0 && side < smallest; side = Math.floor((fails + smallest) / 2)) {
    if (fits(side)) smallest = side;
    else fails = side;
    if (smallest - fails <= 1) break;
  }
  const larger = fits(smallest + 1) && fits(smallest * 2);
  const folder = o.cifar ? ', with an image folder (its images are resized to the model; CIFAR-10\'s are not)' : '';
  throw usageError(`${file}: ${problem}`, larger
    ? `the smallest square image it takes is ${smallest}×${smallest}: pass --image-size H,W at least that large (the size it was trained at)${folder}`
    : `it takes ${smallest}×${smallest}, and not every larger size (a Flatten before its classifier fixes the size): pass --image-size ${smallest},${smallest}, or the size it was exported at${folder}`);
}

/** Benchmark input shapes (batch 1) for a model whose H×W are free, at `size`; undefined for a fixed input. */
export function imageInputShapes(graph: Graph, size: readonly [number, number]): Record<string, number[]> | undefined {
  if (!hasFreeImageSize(graph)) return undefined;
  const input = dataInputs(graph)[0]!;
  const { c, h, w } = imageAxes(graph);
  const dims = [1, 0, 0, 0];
  [dims[c], dims[h], dims[w]] = [input.shape![c] as number, size[0], size[1]];
  return { [input.name]: dims };
}

/**
 * The graph with its image input's height and width free again ('height', 'width'), its batch and name
 * as they are: a pinned free-size model (pinImageSize) whose original input is not at hand — the network
 * inside a raw-pixel model, one whose batch was freed since. Pure.
 */
export function freeImageSize(graph: Graph): Graph {
  const input = dataInputs(graph)[0];
  const shape = input?.shape;
  if (!input || !shape || shape.length !== 4) return graph;
  const { h, w } = imageAxes(graph);
  const freed: Dim[] = [...shape];
  [freed[h], freed[w]] = ['height', 'width'];
  return { ...graph, inputs: graph.inputs.map((v) => (v === input ? { ...v, shape: freed } : v)) };
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

/**
 * The batch of an image input (N×C×H×W or N×H×W×C) or a feature input (N×F), when it is a fixed
 * number; undefined for a free batch and for inputs of other ranks, whose first axis need not be one.
 */
export function fixedBatchOf(shape: readonly Dim[] | undefined): number | undefined {
  const first = shape?.[0];
  return typeof first === 'number' && (shape!.length === 4 || shape!.length === 2) ? first : undefined;
}
