/**
 * train, finetune and distill: one call of the training engine each. The engine checkpoints every
 * epoch into the stage's work folder and resumes from it, so a run killed mid-training continues at
 * the last finished epoch, not at epoch 1.
 */
import { recordedResize, trainedResize, withTrainedResize } from '../../data/model-resize.js';
import { epochJson } from '../../report/json-records.js';
import { masksFromZeros } from '../../compress/prune/unstructured.js';
import { RESIZED_CROP } from '../../engine/epoch.js';
import type { Graph } from '../../onnx/graph.js';
import { classifierParameters, foldBatchNorm, freezeLayers, transferModel } from '../../passes/index.js';
import { formatPercent, KD_LOSS_NOTE, trainingPhaseText } from '../../report/format.js';
import { buildZooModel } from '../../zoo/index.js';
import { modelChannels, normalizationMetadata, withClassNames } from '../../zoo/metadata.js';
import { withStep } from '../../onnx/provenance.js';
import { SlimError } from '../../errors.js';
import { teacherForStudent } from '../../compress/distill/normalization.js';
import { teacherNearChance, teacherNearChanceWarning, weakerTeacherWarning } from '../../compress/distill/warnings.js';
import type { TrainOptions, TrainProgress } from '../../engine/train.js';
import { reinsertedAfter, unnormalizedNote, withTrainingBatchNorm } from '../../engine/reinsert-batchnorm.js';
import type { Progress } from '../../util/terminal.js';
import type { TrainingResult } from '../manifest.js';
import { recipeResize, type DistillSpec, type FinetuneSpec, type TrainSpec, type ZooModelSpec } from '../recipe.js';
import { evalImageCount, evalSlice } from '../data.js';
import type { StageContext, StageOutput } from './context.js';

type TrainingSpec = TrainSpec | FinetuneSpec | DistillSpec;

/** A zoo model for the run's data: its class names (when the counts agree) go into the metadata, for deploy. */
export function zooGraph(spec: ZooModelSpec, classNames: readonly string[], seed: number, imageSize?: [number, number]): Graph {
  const classes = spec.classes ?? classNames.length;
  const size = imageSize ?? spec.image_size;
  return buildZooModel(spec.zoo, { width: spec.width, classes, seed: spec.seed ?? seed, ...(classes === classNames.length ? { classNames: [...classNames] } : {}), ...(spec.channels ? { channels: spec.channels } : {}), ...(size ? { imageSize: size } : {}) });
}

export async function runTrain(ctx: StageContext, spec: TrainSpec, from: string | undefined): Promise<StageOutput<'train'>> {
  const data = await ctx.data();
  const start = from ? await ctx.graphOf(from, 'trainable', { batches: true, trains: true }) : startingGraph(ctx, data.train.classes);
  // new_head / freeze_backbone: transfer learning, as `slim train --new-head [--freeze-backbone]`.
  const transfer = transferModel(start, { newHead: !!spec.new_head, freezeBackbone: !!spec.freeze_backbone, classes: data.train.classes.length, seed: ctx.recipe.seed });
  for (const line of transfer.notes) ctx.log(`  ${line}`);
  // A model trained further (an earlier stage's, a file's) is scored before its first step; a new head starts at chance.
  return train(ctx, spec, transfer.graph, { startTrained: from !== undefined && !spec.new_head, ...(transfer.frozen ? { backbone: transfer.frozen } : {}) });
}

export async function runFinetune(ctx: StageContext, spec: FinetuneSpec, from: string): Promise<StageOutput<'finetune'>> {
  const start = await ctx.graphOf(from, 'trainable', { batches: true, trains: true });
  const teacher = spec.distill_from ? await ctx.graphOf(spec.distill_from, 'trainable', { batches: true, trains: true }) : undefined;
  return train(ctx, spec, start, { startTrained: true, ...(teacher ? { teacher: { graph: teacher, id: spec.distill_from!, temperature: spec.temperature, alpha: spec.alpha } } : {}) });
}

export async function runDistill(ctx: StageContext, spec: DistillSpec, from: string | undefined): Promise<StageOutput<'distill'>> {
  const data = await ctx.data();
  const teacher = await ctx.graphOf(spec.teacher, 'trainable', { batches: true, trains: true });
  // Teacher and student see one batch: a zoo student takes the teacher's channels.
  const channels = modelChannels(teacher);
  if (spec.student?.channels !== undefined && spec.student.channels !== channels) {
    throw new SlimError({ where: 'student.channels', problem: `is ${spec.student.channels} but the teacher '${spec.teacher}' takes ${channels}-channel images, and both see one batch`, fix: 'leave student.channels out: a zoo student takes the teacher\'s channels' }, 'usage');
  }
  // A zoo student is built for the run's images (the teacher's size when the recipe starts from a model file).
  const [, height, width] = data.train.imageShape;
  const asked = spec.student?.image_size;
  if (asked && (asked[0] !== height || asked[1] !== width)) {
    throw new SlimError({ where: 'student.image_size', problem: `is ${asked.join('×')} but the run's images are ${height}×${width}, and teacher and student see one batch`, fix: 'leave student.image_size out: a zoo student is built for the run\'s images' }, 'usage');
  }
  const student = spec.student ? zooGraph({ ...spec.student, channels }, data.train.classes, ctx.recipe.seed, [height, width]) : from ? await ctx.graphOf(from, 'trainable', { batches: true, trains: true }) : startingGraph(ctx, data.train.classes);
  return train(ctx, spec, student, { startTrained: !spec.student && from !== undefined, teacher: { graph: teacher, id: spec.teacher, temperature: spec.temperature, alpha: spec.alpha } });
}

function startingGraph(ctx: StageContext, classes: readonly string[]): Graph {
  const model = ctx.recipe.model;
  if (!model.zoo) throw new Error('a recipe with a model file always has a variant to start from');
  return zooGraph({ zoo: model.zoo, width: model.width ?? 1, ...(model.classes ? { classes: model.classes } : {}), ...(model.seed !== undefined ? { seed: model.seed } : {}), ...(model.channels ? { channels: model.channels } : {}) }, classes, ctx.recipe.seed, model.image_size);
}

interface Teacher {
  graph: Graph;
  id: string;
  temperature: number;
  alpha: number;
}

interface TrainingStart {
  /** The model is trained already: scored before its first step (TrainOptions.scoreStart), for the report's curves. */
  startTrained: boolean;
  teacher?: Teacher;
  /** Parameters that keep their values (freeze_backbone). */
  backbone?: Set<string>;
}

async function train(ctx: StageContext, spec: TrainingSpec, source: Graph, { startTrained, teacher, backbone }: TrainingStart): Promise<{ model: Graph; trainable: Graph; result: TrainingResult; gpuSeconds: number }> {
  const { trainModel } = await import('../../engine/train.js');
  const { teacherTop1 } = await import('../../compress/distill/distill.js');
  const data = await ctx.data();
  const device = spec.device ?? ctx.device;
  let bar: Progress | undefined;
  // At alpha 1 the loss is the labels' cross-entropy alone.
  const distilled = teacher !== undefined && teacher.alpha < 1;
  if (distilled) ctx.log(`  ${KD_LOSS_NOTE.replace('note: ', '')}`);
  const onProgress = (p: TrainProgress): void => {
    bar ??= ctx.progress('  train', p.totalSteps, 'steps');
    bar.update(p.globalStep, {
      phase: trainingPhaseText(p, false, distilled),
    });
  };
  // `freeze`: the layers it names keep their values, as `slim train --freeze`.
  const freshHead = 'new_head' in spec && spec.new_head ? classifierParameters(source) : undefined;
  const layers = 'freeze' in spec && spec.freeze ? freezeLayers(source, spec.freeze, { file: 'the model this stage trains', flag: 'freeze:', fromFile: true, ...(freshHead ? { freshHead } : {}) }) : undefined;
  for (const line of layers?.notes ?? []) ctx.log(`  ${line}`);
  const graph = layers?.graph ?? source;
  const frozen = backbone ?? layers?.frozen;
  // One batch for both: normalized for the student; a teacher trained with other statistics gets its own back.
  const shared = teacher ? teacherForStudent(graph, teacher.graph) : undefined;
  // Said as slim distill says it: at alpha 1 the soft targets weigh nothing.
  const labelsAlone = teacher && teacher.alpha === 1 ? `note: alpha: 1 trains on the labels alone: the teacher '${teacher.id}' is left out of training — lower alpha to distill` : undefined;
  if (labelsAlone) ctx.log(`  ${labelsAlone}`);
  // A BN-folded model file (torch.onnx's export) trains with BN re-inserted; the stage's model folds it again.
  // A frozen backbone keeps its features exactly: no BN is put back into it (nor after a frozen layer).
  const reinserted = backbone ? undefined : await withTrainingBatchNorm(graph, data.train, { seed: ctx.recipe.seed, ...(ctx.threads !== undefined ? { threads: ctx.threads } : {}), ...(shared ? { normalization: shared.normalization } : {}), ...(frozen ? { frozen } : {}) });
  const start = reinserted ?? { graph };
  if (reinserted && reinserted.inserted > 0) ctx.log(`  no BatchNormalization in the model (folded at export, or none in its design): training with BN re-inserted ${reinsertedAfter(reinserted)}`);
  const unnormalized = reinserted && unnormalizedNote(reinserted, graph);
  if (unnormalized) ctx.log(`  ${unnormalized}`);
  // A sparse model (unstructured pruning upstream) keeps its zeros: without masks they would regrow.
  const masks = masksFromZeros(start.graph);
  if (masks.size > 0) ctx.log(`  ${masks.size} sparse weight tensor(s): their zeros are held at zero while training`);
  const evaluation = evalSlice(data, spec.eval_limit);
  // Said before the first step, as slim distill says it: a teacher near chance, or below the student it teaches.
  const said: string[] = [];
  const say = (line: string): void => void (said.push(line), ctx.log(`  ${line}`));
  const teacherScore = distilled && shared
    ? await teacherTop1(shared.teacher, { device, data: { ...data, test: evaluation.test }, ...(evaluation.testLimit !== undefined ? { testLimit: evaluation.testLimit } : {}), ...(ctx.threads !== undefined ? { threads: ctx.threads } : {}) }, shared.normalization, `the teacher '${teacher!.id}'`)
    : undefined;
  if (teacherScore !== undefined) {
    ctx.log(`  teacher '${teacher!.id}': test top-1 ${formatPercent(teacherScore)} (engine, ${evalImageCount(data, spec.eval_limit)} images)`);
    if (teacherNearChance(teacherScore, data.train.classes.length)) say(teacherNearChanceWarning(teacherScore, evaluation.test.name));
  }
  const options: TrainOptions = {
    graph: start.graph,
    origin: source,
    data: { train: data.train, test: evaluation.test },
    epochs: spec.epochs,
    batch: spec.batch,
    device,
    optimizer: spec.optimizer,
    schedule: spec.schedule,
    labelSmoothing: spec.label_smoothing,
    seed: ctx.recipe.seed,
    gpuPricePerHour: ctx.recipe.gpuPricePerHour,
    checkpointDir: ctx.workDir,
    resume: true,
    onProgress,
    file: graph.name || 'model',
    ...(startTrained ? { scoreStart: true } : {}),
    ...(spec.lr !== undefined ? { lr: spec.lr } : {}),
    ...(spec.momentum !== undefined ? { momentum: spec.momentum } : {}),
    ...(spec.weight_decay !== undefined ? { weightDecay: spec.weight_decay } : {}),
    ...(spec.warmup !== undefined ? { warmup: spec.warmup } : {}),
    ...(evaluation.testLimit !== undefined ? { testLimit: evaluation.testLimit } : {}),
    ...(ctx.threads !== undefined ? { threads: ctx.threads } : {}),
    ...(spec.augment === false ? { augment: false as const } : spec.augment === 'resized-crop' ? { augment: RESIZED_CROP } : {}),
    ...(spec.autocast ? { autocast: spec.autocast } : {}),
    ...(spec.channels_last !== undefined ? { channelsLast: spec.channels_last } : {}),
    ...(teacher && shared ? { normalization: shared.normalization, teacher: { graph: shared.teacher, temperature: teacher.temperature, alpha: teacher.alpha } } : {}),
    ...(masks.size > 0 ? { masks } : {}),
    ...(frozen ? { frozen } : {}),
  };
  // Said as it resumes (it was said only once the stage had trained to its end).
  const onStartScored = teacherScore !== undefined
    ? (student: number): void => void (teacherScore < student && !teacherNearChance(student, data.train.classes.length) && say(weakerTeacherWarning(teacherScore, student, evaluation.test.name, 'alpha')))
    : undefined;
  const r = await trainModel({ ...options, ...(onStartScored ? { onStartScored } : {}), onResumed: (epochs) => ctx.log(`  resumed from the checkpoint after epoch ${epochs}`) }).finally(() => bar?.stop());
  const last = r.history.at(-1);
  ctx.log(`  test top-1 ${formatPercent(r.testAccuracy)} (engine, ${evalImageCount(data, spec.eval_limit)} images)${last ? `, train ${distilled ? 'KD ' : ''}loss ${last.trainLoss.toFixed(3)}` : ''}`);
  const result: TrainingResult = {
    history: r.history.map(epochJson),
    test_top1: r.testAccuracy,
    steps: r.steps,
    train_images: data.train.labels.length,
    eval_images: evalImageCount(data, spec.eval_limit),
    ...(r.resumedFrom !== undefined ? { resumed_from_epoch: r.resumedFrom } : {}),
    ...(teacher ? { teacher: teacher.id } : {}),
    ...(r.startAccuracy !== undefined ? { start_top1: r.startAccuracy } : {}),
    ...(labelsAlone || said.length ? { notes: [...(labelsAlone ? [labelsAlone] : []), ...said] } : {}),
  };
  // The student is written with the preprocessing it was trained with (it may have been the teacher's),
  // and the names of the classes it was trained on.
  // How a folder's images were read (data.resize, else what the model records, else the default), as
  // slim train records it: quantize, eval and deploy of it read them so (a trial's recipe models recorded none).
  const readWith = trainedResize(ctx.recipe.data.dataset, recipeResize(ctx.recipe.data), recordedResize(source, 'the model this stage trains'));
  let trained = withClassNames(shared?.recorded ? { ...r.graph, metadata: { ...r.graph.metadata, ...normalizationMetadata(shared.normalization) } } : r.graph, data.train.classes);
  // The steps as `slim distill` and `slim train` record them (slim info lists them).
  if (teacher) trained = withStep(trained, 'slimkit.distillation', { teacher: teacher.id, temperature: teacher.temperature, alpha: teacher.alpha, cached_teacher: false });
  // A new head and frozen layers, as slim train records them.
  const how = {
    ...(freshHead ? { new_head: { classes: data.train.classes.length } } : {}),
    ...(backbone ? { frozen: 'backbone' } : 'freeze' in spec && spec.freeze ? { frozen: spec.freeze } : {}),
  };
  trained = withTrainedResize(trained, readWith);
  trained = withStep(trained, 'slimkit.training', { epochs: spec.epochs, batch: spec.batch, device, ...how, test_top1: r.testAccuracy, data: evaluation.test.name, eval_images: result.eval_images, train_images: result.train_images });
  return { trainable: trained, model: foldBatchNorm(trained), result, gpuSeconds: r.gpuSeconds };
}
