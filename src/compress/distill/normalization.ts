import type { Normalization } from '../../data/types.js';
import type { Graph } from '../../onnx/graph.js';
import { renormalizeInput } from '../../passes/renormalize-input.js';
import { defaultNormalization, modelChannels, perChannel, readPreprocessing } from '../../zoo/metadata.js';

/**
 * Teacher and student see one batch, normalized for the student (its metadata, else the teacher's, else
 * the default, which then stays unrecorded). A teacher that expects other statistics (recorded, or the default when it records none) — ImageNet's inside a model that normalizes
 * raw pixels, say — gets its own back exactly through a per-channel Mul and Add in front of it.
 */
export function teacherForStudent(student: Graph, teacher: Graph, files: { student?: string | undefined; teacher?: string | undefined } = {}): { normalization: Normalization; teacher: Graph; recorded: boolean } {
  const s = readPreprocessing(student, files.student).normalization;
  const t = readPreprocessing(teacher, files.teacher).normalization;
  const normalization = perChannel(s ?? t ?? defaultNormalization(student), modelChannels(student));
  // A teacher that records nothing expects what every other command feeds it: the default.
  // recorded: whether either model states it; the default is not written into the student as if it were known.
  return { normalization, teacher: renormalizeInput(teacher, normalization, t ?? defaultNormalization(teacher), files.teacher), recorded: !!(s ?? t) };
}
