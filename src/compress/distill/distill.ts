/**
 * Knowledge distillation (Hinton et al., 2015): train a student on
 *
 *   α · CE(student, labels) + (1 − α) · T² · KL(softmax(teacher / T) ‖ softmax(student / T))
 *
 * with the teacher (any ONNX classifier the engine can run) in eval mode on the same augmented batch.
 * The T² factor: the soft targets' gradient with respect to a student logit is
 * (softmax(s/T) − softmax(t/T)) / T, and for T above the logits' spread the difference itself shrinks
 * like 1/T, so without T² the soft term's gradient falls like 1/T² and raising the temperature quietly
 * turns distillation off (the article this project started from omits the factor). With it, α keeps
 * one meaning at every T. The loss itself lives in native/src/distill.cc, the one definition every
 * step uses; test/distill-loss.test.ts checks it against PyTorch's formula.
 *
 * Optional cached teacher logits: one teacher pass over the unaugmented training images, reused by
 * every epoch; the student then trains on those same fixed images (no augmentation).
 */
import { inputError, mismatchError, option, usageError } from '../../errors.js';
import { imageSizeOf, type Normalization } from '../../data/types.js';
import { DeviceImageSet, EnginePlan } from '../../engine/plan.js';
import { trainModel, type RunSettings, type TrainOptions, type TrainResult } from '../../engine/train.js';
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import { normalizationMetadata } from '../../zoo/metadata.js';
import { teacherForStudent } from './normalization.js';

export interface DistillOptions extends Omit<TrainOptions, 'graph' | 'teacher' | 'file'> {
  teacher: Graph;
  student: Graph;
  /** Softmax temperature of the soft targets (default 4). */
  temperature?: number;
  /** Weight of the hard-label cross-entropy; 1 − alpha goes to the soft targets (default 0.5). */
  alpha?: number;
  /** One teacher pass over the unaugmented training images, reused every epoch (turns augmentation off). */
  cacheTeacher?: boolean;
  /** Named in errors. */
  teacherFile?: string;
  studentFile?: string;
  /** Called with the teacher's test top-1, and a trained student's (a file, not resumed), before the first step. */
  onScored?: (scores: { teacher: number; student?: number }) => void;
}

export interface DistillResult extends TrainResult {
  /** The teacher's top-1 on the test images (engine, before training), in [0, 1]. */
  teacherAccuracy: number;
  temperature: number;
  alpha: number;
  cachedTeacher: boolean;
}

export const DISTILL_DEFAULTS = { temperature: 4, alpha: 0.5 } as const;

/** The highest softmax temperature taken. */
export const MAX_TEMPERATURE = 100;

/** Refuses an --alpha or --temperature out of range: the command checks before it reads any data, distill() again. */
export function checkDistillSettings(alpha: number, temperature: number): void {
  if (!(temperature > 0 && temperature <= MAX_TEMPERATURE)) {
    throw usageError(`${option('--temperature')} must be in (0, ${MAX_TEMPERATURE}], got ${temperature}`, `beyond that float32's softmax(z/T) is uniform up to rounding, and the T² scale of the loss trains on that rounding (Hinton et al. use 1 to 20)`);
  }
  if (!(alpha >= 0 && alpha <= 1)) throw usageError(`${option('--alpha')} must be in [0, 1], got ${alpha}`, 'alpha weighs the hard labels; 1 − alpha the teacher');
}

/**
 * Trains `student` with α·CE(labels) + (1 − α)·T²·KL(teacher ‖ student) at temperature T, the teacher in
 * eval mode on the same augmented batch (DISTILL_DEFAULTS: T = 4, α = 0.5).
 */
export async function distill(o: DistillOptions): Promise<DistillResult> {
  const temperature = o.temperature ?? DISTILL_DEFAULTS.temperature;
  const alpha = o.alpha ?? DISTILL_DEFAULTS.alpha;
  checkDistillSettings(alpha, temperature);
  if (o.cacheTeacher && o.augment !== undefined && o.augment !== false) {
    throw usageError('cached teacher logits belong to the unaugmented training images, so they cannot be combined with augmentation', 'drop --cache-teacher, or train without augmentation');
  }
  const classes = o.data.train.classes.length;
  checkPair(o, classes);
  const shared = teacherForStudent(o.student, o.teacher, { student: o.studentFile, teacher: o.teacherFile });
  const normalization = o.normalization ?? shared.normalization;
  const teacher = o.normalization ? o.teacher : shared.teacher;

  const teacherAccuracy = await teacherTop1(teacher, o, normalization, o.teacherFile);
  // A trained student (a file) is scored before its first step too: a teacher below it pulls it down. A zoo
  // student starts at chance.
  if (!o.studentFile) o.onScored?.({ teacher: teacherAccuracy });
  const { teacher: _teacher, student, data, onScored, ...rest } = o;
  const { teacher: soft, ...settings } = distillRunSettings(rest);
  const result = await trainModel({
    ...settings,
    graph: student,
    data,
    normalization,
    ...(soft ? { teacher: { ...soft, graph: teacher } } : {}),
    ...(o.studentFile ? { onStartScored: (score: number) => onScored?.({ teacher: teacherAccuracy, student: score }) } : {}),
  });
  // The student is written with the preprocessing it was trained with (it may have come from the
  // teacher's metadata), so evaluation and deploy feed it the same images.
  const graph = o.normalization || shared.recorded ? { ...result.graph, metadata: { ...result.graph.metadata, ...normalizationMetadata(normalization) } } : result.graph;
  return { ...result, graph, teacherAccuracy, temperature, alpha, cachedTeacher: soft?.cache ?? false };
}

/**
 * What distillation trains with, teacher and student aside: the command compares it with a --resume's
 * checkpoint before it reads the data (engine/train.ts: refuseOtherRun).
 */
export function distillRunSettings(o: Omit<DistillOptions, 'teacher' | 'student' | 'data' | 'onScored'>): RunSettings {
  const { teacherFile: _teacherFile, studentFile, cacheTeacher, temperature = DISTILL_DEFAULTS.temperature, alpha = DISTILL_DEFAULTS.alpha, ...train } = o;
  // At alpha 1 the soft targets weigh nothing: the teacher is scored but not run every step, or cached,
  // for a loss term of zero. The gradients are the same either way.
  const teaches = alpha < 1;
  return {
    ...train,
    ...(teaches ? { teacher: { temperature, alpha, ...(cacheTeacher ? { cache: true } : {}) } } : {}),
    ...(cacheTeacher ? { augment: false as const } : {}),
    // A trained student (a file) is scored before its first step.
    ...(studentFile ? { file: studentFile, scoreStart: true } : {}),
  };
}

/**
 * Teacher and student must read the same images and predict the data set's classes (`classes`; not
 * checked when undefined: the command checks the inputs before it reads any data, the classes after).
 */
export function checkPair(o: Pick<DistillOptions, 'teacher' | 'student' | 'teacherFile' | 'studentFile'>, classes: number | undefined): void {
  const describe = (g: Graph, file: string | undefined, role: string): { input: (number | string)[]; classes: number | string | undefined } => {
    const inputs = dataInputs(g);
    if (inputs.length !== 1) throw inputError({ ...(file ? { file } : {}), problem: `the ${role} has ${inputs.length} inputs; distillation needs one image input` });
    const facts = inferShapes(g, file ? { file } : {});
    const out = facts.types.get(g.outputs[0]?.name ?? '');
    return { input: inputs[0]!.shape?.slice(1) ?? [], classes: out?.shape?.at(-1) };
  };
  const t = describe(o.teacher, o.teacherFile, 'teacher');
  const s = describe(o.student, o.studentFile, 'student');
  const fixed = (dims: (number | string)[]): string => dims.map(String).join('×');
  if (t.input.length && s.input.length && t.input.some((d, i) => typeof d === 'number' && typeof s.input[i] === 'number' && d !== s.input[i])) {
    throw mismatchError({
      ...(o.teacherFile ? { file: o.teacherFile } : {}),
      problem: `the teacher takes ${fixed(t.input)} images but the student${o.studentFile ? ` (${o.studentFile})` : ''} takes ${fixed(s.input)}`,
      fix: 'both see one batch: use a teacher and a student for the same image size and channels',
    });
  }
  for (const [role, c, file] of [['teacher', t.classes, o.teacherFile], ['student', s.classes, o.studentFile]] as const) {
    if (classes !== undefined && typeof c === 'number' && c !== classes) {
      throw mismatchError({
        ...(file ? { file } : {}),
        problem: `the ${role} predicts ${c} classes but the data set has ${classes}`,
        fix: role === 'student' ? `export the student for the data set's ${classes} classes, or give a zoo name (built for them)` : 'use a teacher trained on this data set',
      });
    }
  }
}

/** The teacher's test top-1 before training: a wrong teacher (other preprocessing, other labels) shows here. */
/** The teacher's test top-1 in the engine, on the images every epoch is scored on (before the first step). */
export async function teacherTop1(teacher: Graph, o: Pick<DistillOptions, 'device' | 'data' | 'threads' | 'testLimit' | 'evalBatch'>, normalization: Normalization, file: string | undefined): Promise<number> {
  const plan = EnginePlan.create(teacher, { device: o.device ?? 'cpu', imageSize: imageSizeOf(o.data.test), ...(file ? { file } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}) });
  const test = DeviceImageSet.upload(o.data.test, { device: o.device ?? 'cpu', normalization, pad: 0, ...(o.testLimit ? { limit: o.testLimit } : {}) });
  const r = await plan.evaluate(test, { batch: o.evalBatch ?? 512 });
  return r.correct / Math.max(r.count, 1);
}
