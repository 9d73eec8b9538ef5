import { usableCores } from '../../util/cpu-quota.js';
import { hasFreeImageSize } from '../../onnx/image-input.js';
import { refuseLaunchedRanks } from '../../engine/distributed-env.js';
import { refuseOtherRun } from '../../engine/train.js';
import path from 'node:path';
import { epochJson } from '../../report/json-records.js';
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { checkDistillSettings, checkPair, distill, DISTILL_DEFAULTS, distillRunSettings } from '../../compress/distill/index.js';
import type { Graph } from '../../onnx/graph.js';
import { loadModel } from '../../onnx/validate.js';
import { foldBatchNorm, freezeLayers } from '../../passes/index.js';
import { formatPercent } from '../../report/format.js';
import { evaluate } from '../../runtime/evaluate.js';
import { openSession } from '../../runtime/ort.js';
import { buildZooModel, isZooName } from '../../zoo/index.js';
import { teacherNearChance, teacherNearChanceWarning, weakerTeacherWarning } from '../../compress/distill/warnings.js';
import { isCifar10 } from '../../data/cifar10.js';
import { checkDataDir, checkImageSize, dataName, loadTrainTest, withImageSizeFlag, modelInputSize, normalizationFor, modelChannels, recordedClasses, withGivenNormalization, defaultNormalizationNote, zooStatisticsNote } from '../../data/model-data.js';
import { recordedResize, trainedResize, withTrainedResize } from '../../data/model-resize.js';
import { readPreprocessing, withClassNames } from '../../zoo/metadata.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { CHANNEL_COUNTS, inRange, MEAN_HELP, nonNegativeInt, nonNegativeNumber, meanList, oneOf, patternList, positiveInt, positiveNumber, STD_HELP, stdList, withImageSize, withJson, withResize, channelsArg, fraction, augmentArg, AUGMENT_HELP, type AugmentMode } from '../options.js';
import { forBatches } from '../../data/model-batches.js';
import { blownUpWarning, watchTrainingLoad, checkAugmentFlags, checkOptimizerFlags, checkTrainingFlags, explainInterrupt, foldedNote, freshStartNote, leftOverNote, limitsBeyondDataNote, resumedNote, sharedTrainOptions, trainingGraph, trainingProgress } from '../train-options.js';
import { studentInClassOrder } from '../../compress/distill/class-order.js';
import { teacherForStudent } from '../../compress/distill/normalization.js';
import { PRECISIONS, precisionHint, resolvedPrecision, type PrecisionChoice } from '../../engine/precision.js';
import { checkModelFile, checkTrainingOutputs } from '../paths.js';
import { writeMadeModel } from '../write-result.js';
import { CIFAR10_CLASSES } from '../../data/cifar10-files.js';
import { byCodePoint, describeResize, type ResizeMode } from '../../data/image-folder.js';
import type { ImageSet } from '../../data/types.js';
import { hasIntegerWeights, integerWeightsError } from '../../passes/freeze-layers.js';
import { withStep } from '../../onnx/provenance.js';

interface DistillCliOptions extends CommonOptions {
  imageSize?: [number, number];
  teacher: string;
  student: string;
  data: string;
  dataDir?: string;
  mean?: number[];
  std?: number[];
  resize?: ResizeMode;
  out: string;
  epochs: number;
  batch: number;
  alpha: number;
  temperature: number;
  cacheTeacher?: boolean;
  device: 'cpu' | 'cuda';
  cudaGraphs?: boolean;
  precision: PrecisionChoice;
  lr?: number;
  optimizer: 'sgd' | 'adamw';
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  schedule: 'onecycle' | 'cosine' | 'constant';
  warmup?: number;
  labelSmoothing: number;
  seed: number;
  width: number;
  channels?: 1 | 3;
  trainLimit?: number;
  freeze?: string[];
  testLimit?: number;
  threads?: number;
  augment?: AugmentMode | false;
  checkpointDir?: string;
  resume?: string | boolean;
  log?: string;
  gpuPricePerHour: number;
  fold: boolean;
  reinsertBn: boolean;
  verify: boolean;
}

/** The data's own class order, before a model's names relabelled it: CIFAR-10's, or its folders' in code-point order. */
function dataOrder(set: ImageSet): string[] {
  return dataName(set) === 'cifar10' ? [...CIFAR10_CLASSES] : [...set.classes].sort(byCodePoint);
}

export function registerDistill(program: Command): void {
  withResize(withImageSize(withJson(
    program
      .command('distill')
      .description('knowledge distillation: train a student (zoo name or ONNX) to match a teacher ONNX model, with the LibTorch engine')
      .requiredOption('--teacher <file.onnx>', 'the trained teacher (any ONNX classifier the engine can run)')
      .requiredOption('--student <name|file.onnx>', 'a zoo name (e.g. resnet18-cifar) or an .onnx file')
      .requiredOption('--data <cifar10|folder>', "'cifar10', or a folder with train/ and test/ (or val/) subfolders of class folders")
      .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download)')
      .option('--mean <r,g,b|v>', `the student's statistics, and the teacher's when it records none: ${MEAN_HELP}`, meanList('--mean', CHANNEL_COUNTS))
      .option('--std <r,g,b|v>', STD_HELP, stdList('--std', CHANNEL_COUNTS))
      .requiredOption('-o, --out <file.onnx>', 'where to write the trained student')
      .option('--epochs <n>', 'passes over the training set', positiveInt('--epochs'), 30)
      .option('--batch <n>', 'images per step', positiveInt('--batch'), 128)
      .option('--alpha <a>', 'weight of the hard-label loss; 1 − alpha goes to the teacher\'s soft targets', inRange('--alpha', 0, 1), DISTILL_DEFAULTS.alpha)
      .option('--temperature <T>', 'softmax temperature of the soft targets (the loss is scaled by T², so alpha keeps its meaning)', positiveNumber('--temperature'), DISTILL_DEFAULTS.temperature)
      .option('--cache-teacher', 'run the teacher once over the unaugmented training images and reuse its logits (no augmentation)')
      .option('--device <cpu|cuda>', 'where to train', oneOf('--device', ['cpu', 'cuda'] as const), 'cpu')
      .option('--precision <p>', 'auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16 (also on CPUs with AMX: steps 2.45× shorter on ResNet18-CIFAR); fp16 is refused (no loss scaling)', oneOf('--precision', PRECISIONS), 'auto')
      .option('--cuda-graphs', 'CUDA + SGD: capture the training step (teacher included) once and replay it')
      .option('--lr <x>', 'peak learning rate (default 0.1 for sgd, 0.001 for adamw)', positiveNumber('--lr'))
      .option('--optimizer <sgd|adamw>', 'update rule', oneOf('--optimizer', ['sgd', 'adamw'] as const), 'sgd')
      .option('--momentum <x>', 'SGD momentum (Nesterov unless --no-nesterov), default 0.9', fraction('--momentum'))
      .option('--no-nesterov', 'SGD: classic momentum instead of Nesterov\'s')
      .option('--weight-decay <x>', 'default 5e-4 (sgd) or 0.05 (adamw); never on BN and biases', nonNegativeNumber('--weight-decay'))
      .option('--schedule <name>', 'onecycle, cosine (with warm-up) or constant', oneOf('--schedule', ['onecycle', 'cosine', 'constant'] as const), 'onecycle')
      .option('--warmup <fraction>', 'OneCycle rise / cosine warm-up, as a fraction of all steps', inRange('--warmup', 0, 0.999))
      .option('--label-smoothing <x>', 'label smoothing of the hard-label loss', inRange('--label-smoothing', 0, 0.999), 0)
      .option('--seed <n>', 'seed for init (zoo), shuffling, augmentation and dropout', nonNegativeInt('--seed'), 0)
      .option('--width <w>', 'zoo students: channel width multiplier', positiveNumber('--width'), 1)
      .option('--channels <n>', "zoo students: image channels, 3 (RGB) or 1 (grayscale); it must be the teacher's, the default", channelsArg)
      .option('--train-limit <n>', "train on N training images only (CIFAR-10's first N; an image folder's taken across its classes)", positiveInt('--train-limit'))
      .option('--freeze <layers>', 'an .onnx student: keep these layers as they are (PyTorch module names or globs, comma-separated; `slim info S --layers` lists them)', patternList)
      .option('--test-limit <n>', "evaluate on N test images only (CIFAR-10's first N; an image folder's taken across its classes)", positiveInt('--test-limit'))
      .option('--threads <n>', 'LibTorch CPU threads (default: the cores this process may use: its CPU affinity and cgroup quota)', positiveInt('--threads'))
      .option('--augment <mode>', AUGMENT_HELP, augmentArg)
      .option('--no-augment', 'no random crop and flip')
      .option('--checkpoint-dir <dir>', 'write <dir>/last.ckpt atomically after every epoch')
      .option('--resume [file]', 'continue from <checkpoint-dir>/last.ckpt (or the given checkpoint)')
      .option('--log <file.jsonl>', 'append one JSON line per epoch (and start/end events)')
      .option('--gpu-price-per-hour <x>', 'for the cost estimate of CUDA runs', positiveNumber('--gpu-price-per-hour'), 2.5)
      .option('--no-fold', 'keep BatchNormalization nodes in the written model')
      .option('--no-reinsert-bn', 'a student without BatchNormalization (BN folded at export): train its weights as they are instead of with BN re-inserted')
      .option('--no-verify', 'skip scoring the written model with ONNX Runtime'),
  )))
    .addHelpText('after', [
      '',
      'The loss is alpha·CE(student, labels) + (1 − alpha)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)); the',
      'teacher runs in eval mode on the same augmented batch. Compare with `slim train` on the same recipe.',
      '',
      'Examples:',
      '  slim distill --teacher r34.onnx --student resnet18-cifar --data cifar10 --epochs 30 --out r18-kd.onnx',
      '  slim distill --teacher r18.onnx --student resnet18-cifar --width 0.5 --data cifar10 --epochs 10 --alpha 0.3 --temperature 4 --out small.onnx',
      '  slim distill --teacher big.onnx --student pruned.onnx --data cifar10 --epochs 2 --lr 0.01 --cache-teacher --out tuned.onnx',
    ].join('\n'))
    .action(async (options: DistillCliOptions, command: Command) => {
      refuseLaunchedRanks('slim distill');
      checkOptimizerFlags(options);
      checkAugmentFlags(command, options);
      if (!isZooName(options.student) && command.getOptionValueSource('width') === 'cli') {
        throw usageError(`--width builds zoo models; ${options.student} keeps the widths it was exported with`, 'drop --width (slim prune --structured makes a model narrower)');
      }
      checkDistillSettings(options.alpha, options.temperature);
      checkTrainingOutputs(options, [options.teacher, options.student]);
      checkTrainingFlags(options);
      // --mean/--std: the student's statistics, and the teacher's when it records none (a plain torch.onnx export).
      const teacherAsGiven = forBatches(withImageSizeFlag((await loadModel(options.teacher)).graph, options.teacher, options.imageSize, [options.data], { writes: false }), options.teacher, { written: false }).graph;
      const teacherRecordsNone = !readPreprocessing(teacherAsGiven).normalization;
      const teacher = teacherRecordsNone ? withGivenNormalization(teacherAsGiven, options) : teacherAsGiven;
      // A trial's teacher, trained on CIFAR-10's statistics, fed the student's 0.5s: 36.4 % → 18.0 %, unnoticed.
      if (teacherRecordsNone && (options.mean || options.std)) {
        log(`note: ${options.teacher} records no mean/std, so it is fed --mean/--std as the student is: if it was trained with other statistics its soft targets are off (the teacher top-1 printed below shows it); a teacher that records its own (as every model slim trains does) keeps them`);
      }
      const studentIsZoo = isZooName(options.student);
      if (!studentIsZoo) checkModelFile(options.student, '--student');
      // A student of free size that records none is used at the teacher's size: both see one batch (a trial's
      // was refused for a size it need not have been asked).
      const studentGraph = studentIsZoo ? undefined : (await loadModel(options.student)).graph;
      const teacherSize = modelInputSize(teacherAsGiven);
      const studentSize = options.imageSize ?? (studentGraph && hasFreeImageSize(studentGraph) && !modelInputSize(studentGraph) ? teacherSize : undefined);
      if (studentSize && !options.imageSize) log(`note: ${options.student}'s height and width are free and it records no size: it is trained at the teacher's ${studentSize.join('×')} (both see one batch)`);
      const studentFreed = studentGraph ? forBatches(withImageSizeFlag(studentGraph, options.student, studentSize, [options.data]), options.student) : undefined;
      const studentFile = studentFreed ? withGivenNormalization(studentFreed.graph, options) : undefined;
      // An int8 student trains nothing: said before the data is read.
      if (studentFile && hasIntegerWeights(studentFile)) throw integerWeightsError(options.student);
      if (options.freeze && !studentFile) throw usageError(`--freeze keeps layers of a trained student; ${options.student} is built fresh from the zoo`, 'drop --freeze, or pass a trained .onnx as --student');
      // Checked before the data is read: a name that matches nothing is a typo.
      const frozenLayers = studentFile && options.freeze ? freezeLayers(studentFile, options.freeze, { file: options.student }) : undefined;
      // Said once training runs (a usage error stays the only line): the statistics of model files that record none.
      const notes = [defaultNormalizationNote(teacher, options.teacher), studentFile ? defaultNormalizationNote(studentFile, options.student) : undefined, ...(frozenLayers?.notes ?? [])].filter((n) => n !== undefined);
      if (options.channels !== undefined && studentFile) {
        throw usageError(`--channels builds zoo students; ${options.student} takes ${modelChannels(studentFile)}-channel images as it was exported`, 'drop --channels');
      }
      if (options.channels !== undefined && options.channels !== modelChannels(teacher)) {
        throw usageError(`--channels ${options.channels} asks for a student of ${options.channels}-channel images, but the teacher takes ${modelChannels(teacher)}-channel ones and both see one batch`, 'drop --channels: a zoo student takes the teacher\'s channels');
      }
      // One batch for both: a student file must take the teacher's images (before any data is read).
      if (studentFile) checkPair({ teacher, student: studentFile, teacherFile: options.teacher, studentFile: options.student }, undefined);
      const size = modelInputSize(studentFile ?? teacher);
      // The run's settings, known before the data: a --resume of a run with other ones is refused here.
      const run = {
        teacherFile: options.teacher,
        ...(studentIsZoo ? { seededStart: true } : { studentFile: options.student }),
        epochs: options.epochs,
        batch: options.batch,
        alpha: options.alpha,
        temperature: options.temperature,
        cacheTeacher: options.cacheTeacher ?? false,
        device: options.device,
        optimizer: options.optimizer,
        schedule: options.schedule,
        labelSmoothing: options.labelSmoothing,
        seed: options.seed,
        gpuPricePerHour: options.gpuPricePerHour,
        command: 'slim distill',
        ...sharedTrainOptions(options),
        // Other statistics make other batches: a checkpoint of the run with them must not resume this one.
        ...(options.mean || options.std || options.resize ? { resumeKey: { ...(options.mean ? { mean: options.mean } : {}), ...(options.std ? { std: options.std } : {}), ...(options.resize ? { resize: describeResize(options.resize) } : {}) } } : {}),
      };
      await refuseOtherRun(distillRunSettings(run));
      checkDataDir(options);
      // The teacher's outputs must mean the data's classes: matched by the names it records, else by
      // position (the data's own order, as slim eval scores such a model).
      const teacherClasses = recordedClasses(teacher, options.teacher);
      // A folder's images resized as the student records, else the teacher (slimkit.resize); a zoo student records it too.
      const dataResize = (studentFile ? recordedResize(studentFile, options.student) : undefined) ?? recordedResize(teacher, options.teacher);
      const data = await loadTrainTest(options.data, { ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(size ? { size } : {}), channels: studentFile ? modelChannels(studentFile) : (options.channels ?? modelChannels(teacher)), trainLimit: options.trainLimit, testLimit: options.testLimit, classes: teacherClasses, recordedResize: dataResize, resize: options.resize });
      checkImageSize(teacher, data.train, options.teacher, '--data');
      if (studentFile) checkImageSize(studentFile, data.train, options.student, '--data');
      // A student file scores in that order too: one recording the names in another has its classifier permuted.
      const ordered = studentFile
        ? studentInClassOrder(frozenLayers?.graph ?? studentFile, data.train.classes, { student: options.student, owner: teacherClasses ? { teacher: options.teacher } : { data: dataName(data.train), teacher: options.teacher }, dataOrder: dataOrder(data.train) })
        : undefined;
      if (ordered?.note) notes.push(ordered.note);
      for (const note of [leftOverNote(data.train.labels.length, options.trainLimit, options.batch), limitsBeyondDataNote({ train: data.train.labels.length, test: data.test.labels.length }, options), freshStartNote(options)]) if (note) notes.push(note);
      // Its class count too, before BN re-insertion measures anything.
      if (studentFile) checkPair({ teacher, student: studentFile, teacherFile: options.teacher, studentFile: options.student }, data.train.classes.length);
      const student: Graph = ordered && studentFile
        ? await trainingGraph(ordered.graph, data.train, { ...options, file: options.student, normalization: teacherForStudent(studentFile, teacher, { student: options.student, teacher: options.teacher }).normalization, ...(frozenLayers ? { frozen: frozenLayers.frozen } : {}) })
        : withGivenNormalization(buildZooModel(options.student as Parameters<typeof buildZooModel>[0], { width: options.width, seed: options.seed, classNames: data.train.classes, channels: options.channels ?? modelChannels(teacher), ...(size ? { imageSize: size } : {}) }), options);
      if (!studentFile && !options.mean && !isCifar10(options.data)) notes.push(zooStatisticsNote(options.student, data.train));
      if (options.cacheTeacher && options.alpha < 1) log('--cache-teacher: one teacher pass over the unaugmented training images; training without augmentation');
      // alpha weighs the labels: at 1 the teacher's soft targets weigh nothing.
      if (options.alpha === 1) notes.push(`note: --alpha 1 trains on the labels alone: the teacher is scored, then left out of training${options.cacheTeacher ? ' (--cache-teacher caches nothing)' : ''} — lower --alpha to distill`);

      const hint = precisionHint(options.device, options.precision);
      const bar = trainingProgress('distill', () => [...notes, ...(hint ? [hint] : [])].join('\n') || undefined, { distilled: options.alpha < 1 });
      const interrupt = explainInterrupt('slim distill', options);
      const otherLoad = watchTrainingLoad(options.device, false, options.threads ?? usableCores());
      const result = await distill({
        ...run,
        teacher,
        student,
        data,
        onProgress: bar.onProgress,
        onEpoch: bar.onEpoch,
        // Said before the first step, so a weaker teacher can be stopped before hours of it.
        onScored: ({ teacher: t, student: s }) => {
          if (options.alpha === 1) return;
          // Called once: with the student's score when it is a trained file (scored before its first step).
          const classes = data.train.classes.length;
          if (teacherNearChance(t, classes)) bar.say(teacherNearChanceWarning(t, data.test.name));
          if (s !== undefined && t < s && !teacherNearChance(s, classes)) bar.say(weakerTeacherWarning(t, s, data.test.name));
        },
        ...(frozenLayers ? { frozen: frozenLayers.frozen } : {}),
        // A student file's own weights, before BN re-insertion: what a checkpoint must have started from.
        ...(studentFile ? { origin: studentFile } : {}),
      }).catch((e: unknown) => {
        interrupt.stop();
        throw e;
      }).finally(() => bar.stop());
      // From here a Ctrl-C says that training had finished, and what of it was kept.
      const load = otherLoad();
      interrupt.trained(options.out);
      const distilled = options.alpha < 1;

      let out: Graph = options.fold ? foldBatchNorm(result.graph) : result.graph;
      const folded = foldedNote(result.graph, out, options.fold);
      if (studentFreed) out = studentFreed.restore(out);
      out = withClassNames(out, data.train.classes);
      out = withTrainedResize(out, trainedResize(options.data, options.resize, dataResize));
      // Recorded in this order: the training record's top-1 is the distilled model's.
      // At --alpha 1 nothing was distilled: the model records its training alone.
      // The test images both were scored on: a top-1 without its count read as the full test set's.
      const evalImages = Math.min(options.testLimit ?? Infinity, data.test.labels.length);
      if (distilled) out = withStep(out, 'slimkit.distillation', { teacher: path.basename(options.teacher), teacher_top1: result.teacherAccuracy, eval_images: evalImages, temperature: result.temperature, alpha: result.alpha, cached_teacher: result.cachedTeacher });
      out = withStep(out, 'slimkit.training', { epochs: options.epochs, batch: options.batch, device: options.device, test_top1: result.testAccuracy, data: data.test.name, eval_images: data.test.labels.length, train_images: Math.min(options.trainLimit ?? Infinity, data.train.labels.length) });
      const { bytes } = await writeMadeModel(out, options.out, { checkpointDir: options.checkpointDir });
      interrupt.written();
      let ortTop1: number | undefined;
      if (options.verify) {
        const session = await openSession(options.out, options.threads ? { threads: options.threads } : {});
        try {
          const scored = await evaluate(session, data.test, { normalization: normalizationFor(out, {}), batchSize: 256, ...(options.testLimit ? { limit: options.testLimit } : {}) });
          ortTop1 = scored.top1;
        } finally {
          await session.close();
        }
      }
      interrupt.stop();
      const summary = {
        teacher: options.teacher,
        student: options.student,
        out: options.out,
        size_bytes: bytes,
        alpha: result.alpha,
        temperature: result.temperature,
        cached_teacher: result.cachedTeacher,
        teacher_top1: result.teacherAccuracy,
        eval_images: evalImages,
        ...(result.startAccuracy !== undefined ? { start_top1: result.startAccuracy } : {}),
        test_top1: result.testAccuracy,
        ...(ortTop1 !== undefined ? { onnxruntime_top1: ortTop1 } : {}),
        epochs: result.history.length,
        steps: result.steps,
        precision: resolvedPrecision(options.device, options.precision),
        seconds: result.seconds,
        gpu_seconds: result.gpuSeconds,
        estimated_cost: result.estimatedCost,
        ...load.json,
        ...(result.resumedFrom !== undefined ? { resumed_from_epoch: result.resumedFrom } : {}),
        history: result.history.map(epochJson),
      };
      printResult(options, summary, () =>
        [
          `${distilled ? `distilled ${options.teacher} (test top-1 ${formatPercent(result.teacherAccuracy)} on ${evalImages.toLocaleString('en')} images) into ${options.student}` : `trained ${options.student} on the labels alone (--alpha 1; teacher ${options.teacher} scored ${formatPercent(result.teacherAccuracy)} on ${evalImages.toLocaleString('en')} images)`} for ${result.history.length} epoch${result.history.length === 1 ? '' : 's'} (${result.steps} step${result.steps === 1 ? '' : 's'}) in ${result.seconds.toFixed(1)} s` +
            (result.gpuSeconds > 0 ? ` — ${result.gpuSeconds.toFixed(1)} GPU-seconds, about $${result.estimatedCost.toFixed(4)}` : ''),
          ...resumedNote(result.resumedFrom, options.epochs),
          `  alpha ${result.alpha}, T ${result.temperature}${result.cachedTeacher ? ', cached teacher logits' : ''}`,
          `  student test top-1 ${formatPercent(result.testAccuracy)} (engine${result.startAccuracy !== undefined ? `; ${formatPercent(result.startAccuracy)} before` : ''})${ortTop1 !== undefined ? `, ${formatPercent(ortTop1)} (ONNX Runtime, written model)` : ''}`,
          `wrote ${options.out}${folded}`,
        ].join('\n'),
      );
      const blownUp = blownUpWarning(result.testAccuracy, result.history.at(-1)?.testLoss, data.train.classes.length);
      if (blownUp) log(blownUp);
      if (load.note) log(load.note);
      // A student from the zoo starts at chance; ending above its teacher, the soft targets may have held it back.
      // Said on a busy machine too (an `else` here dropped it whenever the load note was printed).
      if (distilled && studentIsZoo && result.testAccuracy > result.teacherAccuracy) {
        log(`note: the student ended above its teacher (${formatPercent(result.testAccuracy)} against ${formatPercent(result.teacherAccuracy)}): the teacher's soft targets may have held it back — compare with slim train on the same recipe (or --alpha 1)`);
      }
    });
}
