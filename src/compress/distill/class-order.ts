import path from 'node:path';
import { listNames } from '../../data/image-folder.js';
import { SlimError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import { reorderClassScores } from '../../passes/index.js';
import { readPreprocessing, withClassNames } from '../../zoo/metadata.js';

/**
 * A trained student file, made to score classes in the teacher's order. The teacher's outputs decide what
 * each position means (the data is read in its order), so a student recording the same class names in
 * another order would otherwise have its positions relearned from the teacher — what it knew lost. Its
 * classifier is permuted instead (reorderClassScores), the names recorded in the teacher's order, with a
 * note. A student recording other names learns the teacher's (said in a note); one of the two recording
 * none leaves positions to decide, as before.
 */
export function studentInTeacherOrder(student: Graph, teacher: Graph, files: { student: string; teacher: string }): { graph: Graph; note?: string } {
  const s = readPreprocessing(student, files.student).classNames;
  const t = readPreprocessing(teacher, files.teacher).classNames;
  if (!s || !t || (s.length === t.length && s.every((name, i) => name === t[i]))) return { graph: student };
  const studentName = path.basename(files.student);
  const teacherName = path.basename(files.teacher);
  const sameSet = s.length === t.length && new Set(s).size === s.length && new Set(t).size === t.length && t.every((name) => s.includes(name));
  if (!sameSet) {
    const onlyStudent = s.filter((name) => !t.includes(name));
    const onlyTeacher = t.filter((name) => !s.includes(name));
    const differ = [onlyStudent.length ? `only the student has ${listNames(onlyStudent)}` : '', onlyTeacher.length ? `only the teacher has ${listNames(onlyTeacher)}` : ''].filter(Boolean).join('; ');
    return { graph: student, note: `note: ${studentName} records other classes than ${teacherName}${differ ? ` (${differ})` : ''}: it learns the teacher's, and is written with their names` };
  }
  const order = t.map((name) => s.indexOf(name));
  let graph: Graph;
  try {
    graph = reorderClassScores(student, order);
  } catch (e) {
    if (!(e instanceof SlimError)) throw e;
    throw new SlimError({
      file: files.student,
      problem: `it records ${teacherName}'s classes in another order, and its scores cannot be put in the teacher's order (${e.parts.problem})`,
      fix: `export the student with its classifier as the last layer, or distill into a zoo student`,
    });
  }
  return { graph: withClassNames(graph, t), note: `note: ${studentName} records ${teacherName}'s classes in another order: its classifier's outputs are put in the teacher's order (${listNames(t)}), keeping what it learned` };
}
