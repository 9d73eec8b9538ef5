import { tmpdir } from 'node:os';
import path from 'node:path';
import { SlimError } from '../errors.js';
import { madeBySlimkit, type Graph } from '../onnx/graph.js';
import { writeModel } from '../onnx/io.js';

/**
 * Writes the model a long command made (training, distillation, QAT, pruning with fine-tuning). When
 * that fails at the end — the disk filled up meanwhile, the folder was removed — the work is not thrown
 * away: the model goes to the system's temp folder instead and the error says where, or, when that
 * fails too, how the checkpoint (if any) gives it back. The model names slimkit as its producer (madeBySlimkit).
 */
export async function writeMadeModel(made: Graph, file: string, o: { checkpointDir?: string | undefined } = {}): Promise<{ bytes: number }> {
  const graph = madeBySlimkit(made);
  try {
    return await writeModel(graph, file);
  } catch (e) {
    // Only a file system's refusal is worth a second place: a model that cannot be encoded fails there too.
    if (!(e instanceof SlimError) || !e.parts.problem.startsWith('cannot be written')) throw e;
    const rescue = path.join(tmpdir(), `slim-rescued-${process.pid}-${path.basename(file)}`);
    // What the refusal asks for (free space, a higher ulimit -f, another folder), before the way back.
    const remedy = (e.parts.fix ?? 'free space (or fix the path)').replace(/ and run again$/, '');
    try {
      await writeModel(graph, rescue);
    } catch {
      const fix = o.checkpointDir
        ? `${remedy}, then run the same command with --resume: ${o.checkpointDir}/last.ckpt holds every epoch, so it only writes the model`
        : `${remedy} and run again`;
      throw new SlimError({ ...e.parts, problem: `${e.parts.problem}, nor could the system's temp folder take it: this run's model is lost`, fix }, e.kind);
    }
    throw new SlimError({ ...e.parts, problem: `${e.parts.problem}: the model was written to ${rescue} instead`, fix: `${remedy}, then move it: mv ${rescue} ${file}` }, e.kind);
  }
}
