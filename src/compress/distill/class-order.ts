import path from 'node:path';
import { listNames } from '../../data/image-folder.js';
import { SlimError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import { reorderClassScores } from '../../passes/index.js';
import { readPreprocessing, withClassNames } from '../../zoo/metadata.js';

/** Whose class order the student must score in: the teacher's (it records names), or the data's (the teacher scores it by position). */
export type ClassOrderOwner = { teacher: string } | { data: string; teacher: string };

/**
 * A trained student file, made to score `classes` in their order — the order the teacher's outputs
 * have, which is also the order the data is labelled in. A student recording the same names in
 * another order would otherwise have its positions relearned — what it knew lost. Its classifier is
 * permuted instead (reorderClassScores), the names recorded in the new order, with a note. A student
 * recording other names learns these (said in a note); one recording none is taken by position.
 */
export function studentInClassOrder(
  student: Graph,
  classes: readonly string[],
  o: { student: string; owner: ClassOrderOwner; dataOrder?: readonly string[] },
): { graph: Graph; note?: string } {
  // A student recording no names scores by position, in the data's own order (as slim eval takes it).
  const recorded = readPreprocessing(student, o.student).classNames;
  const s = recorded ?? (o.dataOrder && o.dataOrder.length === classes.length ? o.dataOrder : undefined);
  if (!s || (s.length === classes.length && s.every((name, i) => name === classes[i]))) return { graph: student };
  const studentName = path.basename(o.student);
  const teacherName = path.basename(o.owner.teacher);
  const data = 'data' in o.owner ? o.owner.data : undefined;
  const byTeacher = data === undefined;
  const whose = !recorded ? "the data's classes in the data's own order" : byTeacher ? `${teacherName}'s classes` : `the classes of ${data}`;
  const sameSet = s.length === classes.length && new Set(s).size === s.length && new Set(classes).size === classes.length && classes.every((name) => s.includes(name));
  if (!sameSet) {
    if (!recorded) return { graph: student };
    const onlyStudent = s.filter((name) => !classes.includes(name));
    const onlyOther = classes.filter((name) => !s.includes(name));
    const other = byTeacher ? 'the teacher' : 'the data';
    const differ = [onlyStudent.length ? `only the student has ${listNames(onlyStudent)}` : '', onlyOther.length ? `only ${other} has ${listNames(onlyOther)}` : ''].filter(Boolean).join('; ');
    return { graph: student, note: `note: ${studentName} records other classes than ${data ?? teacherName}${differ ? ` (${differ})` : ''}: it learns ${byTeacher ? "the teacher's" : "the data's"}, and is written with their names` };
  }
  const order = classes.map((name) => s.indexOf(name));
  let graph: Graph;
  try {
    graph = reorderClassScores(student, order);
  } catch (e) {
    if (!(e instanceof SlimError)) throw e;
    throw new SlimError({
      file: o.student,
      problem: `${recorded ? 'it records' : 'it scores'} ${whose}${recorded ? ' in another order' : ''}, and its scores cannot be put in that order (${e.parts.problem})`,
      fix: 'export the student with its classifier as the last layer, or distill into a zoo student',
    });
  }
  // (A student without names meets a teacher recording none only in the data's own order: returned above.)
  const note = !recorded
    ? `note: ${studentName} records no class names, so its outputs are the data's classes in the data's own order; they are put in the order ${teacherName} records (${listNames(classes)})`
    : `note: ${studentName} records ${whose} in another order: its classifier's outputs are put in ${byTeacher ? "the teacher's order" : `the data's order, which ${teacherName}, recording no class names, scores by position`} (${listNames(classes)}), keeping what it learned`;
  return { graph: withClassNames(graph, classes), note };
}
