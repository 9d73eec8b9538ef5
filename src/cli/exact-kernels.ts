/**
 * The second top-1 `slim eval`, `slim bench` and `slim quantize` give an int8 model on an x64 CPU whose
 * int8 sums saturate: the same model on exact kernels (exactKernelsTwin), scored on the same images.
 */
import type { ImageSet } from '../data/types.js';
import type { ImageSource } from '../data/stream.js';
import type { Graph } from '../onnx/graph.js';
import { encodeModel } from '../onnx/io.js';
import { evaluate, type EvaluateOptions } from '../runtime/evaluate.js';
import { openSession } from '../runtime/ort.js';
import { progress } from '../util/terminal.js';

export async function exactKernelsTop1(twin: Graph, set: ImageSet | ImageSource, o: Omit<EvaluateOptions, 'onProgress'> & { threads?: number | undefined; label: string }): Promise<number> {
  const { threads, label, ...options } = o;
  const model = await openSession(encodeModel(twin).model, threads ? { threads } : {});
  const count = 'count' in set ? set.count : set.labels.length;
  const bar = progress(label, Math.min(o.limit ?? Infinity, count), 'img');
  try {
    return (await evaluate(model, set, { ...options, onProgress: (done) => bar.update(done) })).top1;
  } finally {
    bar.stop();
    await model.close();
  }
}
