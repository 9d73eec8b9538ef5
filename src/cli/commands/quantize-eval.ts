import { usageError } from '../../errors.js';
import { isCifar10 } from '../../data/cifar10.js';
import type { Normalization } from '../../data/types.js';
import { maxHeldBytes, type ImageSource } from '../../data/stream.js';
import type { ResizeMode } from '../../data/image-folder.js';
import type { Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { evaluate, nanScoresWarning } from '../../runtime/evaluate.js';
import { imageMixingNodes, oneImagePerRunNote } from '../../onnx/image-mixing.js';
import { openSession } from '../../runtime/ort.js';
import { checkImageSize, openDataset, resizeOnCifar, modelInputSize, modelChannels, recordedClasses, requireDataFolder } from '../../data/model-data.js';
import { recordedResize } from '../../data/model-resize.js';
import { log, progress } from '../../util/terminal.js';

/** The images `slim quantize` scores top-1 on (before/after, --max-drop, QAT's PTQ baseline). */
export interface EvalData {
  /** In memory when it fits in one set (4 GiB decoded), else read a chunk at a time on every scoring. */
  source: ImageSource;
  /** Read anew on each scoring: too large to hold decoded. */
  streamed: boolean;
  limit?: number;
}

interface EvalFlags {
  eval?: string;
  evalLimit?: number;
  maxDrop?: number;
  calib?: string;
  dataDir?: string;
  /** QAT's training data: its test split is scored by default, as training scores it (--test-limit). */
  qat?: boolean;
  data?: string;
  testLimit?: number;
  resize?: ResizeMode;
}

/**
 * The evaluation set the flags ask for (--eval, or CIFAR-10 test when calibrating on CIFAR-10), if any;
 * with --qat always (the data's test split unless --eval says otherwise): training scores the
 * fake-quantized model in float, and what ships is the int8 model ONNX Runtime runs.
 */
export async function loadEvalData(options: EvalFlags, graph: Graph, file: string): Promise<EvalData | undefined> {
  const qat = options.qat && options.data !== undefined;
  let name = options.eval ?? (qat ? options.data : undefined);
  const wanted = name !== undefined || options.evalLimit !== undefined || options.maxDrop !== undefined;
  if (!wanted) return undefined;
  const limit = options.evalLimit ?? (qat ? options.testLimit : undefined);
  if (name === undefined) {
    if (!isCifar10(options.calib ?? '')) {
      throw usageError('--eval-limit / --max-drop need evaluation images', 'pass --eval cifar10 or --eval <folder of images by class>');
    }
    name = 'cifar10';
  }
  if (!isCifar10(name)) await requireDataFolder(name, options.eval !== undefined ? '--eval' : '--data', `pass ${options.eval !== undefined ? '--eval' : '--data'} cifar10 or a folder with one subfolder of images per class`);
  // Held decoded when it fits (it is scored before and after, and by each --max-drop step); a larger
  // split (ImageNet's validation images at 224×224) is read a chunk at a time each time.
  const source = await openDataset(
    { data: name, split: 'test', splitOptional: true, ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(limit !== undefined ? { limit } : {}), ...folderResize(options, name), recordedResize: recordedResize(graph, file) },
    modelInputSize(graph),
    modelChannels(graph),
    recordedClasses(graph, file),
    { wholeUpTo: maxHeldBytes() },
  );
  checkImageSize(graph, source, file, '--eval', 'eval');
  const [c, h, w] = source.imageShape;
  return { source, streamed: source.count * c * h * w > maxHeldBytes(), ...(limit !== undefined ? { limit } : {}) };
}

/** ONNX Runtime top-1 of a graph on the evaluation set, with a progress bar named `label`. */
export async function top1(graph: Graph, data: EvalData, normalization: Normalization, threads: number | undefined, label: string): Promise<number> {
  const mixing = imageMixingNodes(graph);
  const mixingNote = oneImagePerRunNote('the quantized model', mixing);
  if (mixingNote) log(mixingNote);
  const model = await openSession(encodeModel(graph).model, { ...(threads ? { threads } : {}), label });
  const total = Math.min(data.limit ?? Infinity, data.source.count);
  const bar = progress(label, total, 'img');
  try {
    const r = await evaluate(model, data.source, { normalization, oneImagePerRun: mixing.length > 0, ...(data.limit !== undefined ? { limit: data.limit } : {}), onProgress: (d) => bar.update(d) });
    const nan = nanScoresWarning(label.replace(/^eval /, 'the ').concat(' model'), r);
    if (nan) log(nan);
    return r.top1;
  } finally {
    bar.stop();
    await model.close();
  }
}

/**
 * --resize for the images of `data` when it is a folder (CIFAR-10's are not resized): calibration and
 * evaluation may read one of each. A --resize neither reads is refused.
 */
export function folderResize(options: { resize?: ResizeMode; calib?: string; eval?: string; data?: string }, data: string | undefined): { resize?: ResizeMode } {
  if (!options.resize) return {};
  const folders = [options.calib, options.eval, options.data].filter((d): d is string => d !== undefined && !isCifar10(d));
  if (folders.length === 0) throw resizeOnCifar('drop --resize, or pass --calib / --eval <image folder>');
  return data !== undefined && !isCifar10(data) ? { resize: options.resize } : {};
}
