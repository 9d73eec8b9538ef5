/**
 * How a model's photos are brought to its input (slimkit.resize): recorded by slim quantize --resize,
 * read back by every command that reads an image folder for the model; a --resize given replaces it.
 */
import type { Graph } from '../onnx/graph.js';
import { log } from '../util/terminal.js';
import { readPreprocessing, resizeMetadata } from '../zoo/metadata.js';
import { isCifar10 } from './cifar10.js';
import { DEFAULT_RESIZE, describeResize, type ResizeMode } from './image-folder.js';

/** How a model records its images are resized (slimkit.resize), and the file, for notes. */
export interface ModelResize {
  file: string;
  mode: ResizeMode;
}

/** What `graph` records of how its images are resized (slimkit.resize), if anything. */
export function recordedResize(graph: Graph, file: string): ModelResize | undefined {
  const mode = readPreprocessing(graph, file).resize;
  return mode ? { file, mode } : undefined;
}

/** Where the resize in use came from, for its refusal: nothing for the flag, else the model's metadata. */
export function resizeSourceOf(flag: ResizeMode | undefined, recorded: ModelResize | undefined): { resizeSource?: string } {
  return !flag && recorded ? { resizeSource: `${recorded.file}'s slimkit.resize` } : {};
}

/** --resize when given (noted when the model records another), else the model's record. */
export function chosenResize(flag: ResizeMode | undefined, recorded: ModelResize | undefined): ResizeMode | undefined {
  const note = replacedResizeNote('--resize', flag, recorded);
  if (note) log(note);
  return flag ?? recorded?.mode;
}

/** The note when a resize asked for (`asker`: "--resize", "data.resize") differs from the one the model records. */
export function replacedResizeNote(asker: string, asked: ResizeMode | undefined, recorded: ModelResize | undefined): string | undefined {
  if (!asked || !recorded || describeResize(asked) === describeResize(recorded.mode)) return undefined;
  return `note: ${asker} ${describeResize(asked)} replaces the resize ${describeResize(recorded.mode)} that ${recorded.file} records (slimkit.resize)`;
}

/**
 * How a training command read its images: --resize, else the model's record, else the default
 * (shorter side + centre crop) for an image folder; nothing for CIFAR-10, which is not resized.
 */
export function trainedResize(data: string, flag: ResizeMode | undefined, recorded: ModelResize | undefined): ResizeMode | undefined {
  return isCifar10(data) ? undefined : (flag ?? recorded?.mode ?? DEFAULT_RESIZE);
}

/**
 * `graph` recording the resize it was trained with (slimkit.resize): a later quantize, eval or deploy
 * reads its images as it learned them, and one given another --resize says so (a trial's model,
 * trained on centre crops, was quantized with --resize stretch without a word).
 */
export function withTrainedResize(graph: Graph, mode: ResizeMode | undefined): Graph {
  return mode ? { ...graph, metadata: { ...graph.metadata, ...resizeMetadata(mode) } } : graph;
}

/**
 * `graph` recording --resize as how its images are resized (slimkit.resize): every later read of an
 * image folder for it, and a deploy bundle made from the model it writes, resize so. Unchanged without
 * the flag; a flag unlike the model's record is noted (chosenResize).
 */
export function withGivenResize(graph: Graph, resize: ResizeMode | undefined, file: string): Graph {
  if (!resize) return graph;
  chosenResize(resize, recordedResize(graph, file));
  return { ...graph, metadata: { ...graph.metadata, ...resizeMetadata(resize) } };
}
