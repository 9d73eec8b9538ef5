import { usableCores } from '../../util/cpu-quota.js';
import path from 'node:path';
import type { Command } from 'commander';
import { epochJson } from '../../report/json-records.js';
import { usageError } from '../../errors.js';
import { isCifar10 } from '../../data/cifar10.js';
import { refuseOtherRun, trainModel, type RunSettings } from '../../engine/train.js';
import { DistributedTraining } from '../../engine/distributed.js';
import { readDistributedEnv } from '../../engine/distributed-env.js';
import { PRECISIONS, precisionHint, resolvedPrecision, type PrecisionChoice } from '../../engine/precision.js';
import { launchTraining } from '../../engine/launch-train.js';
import { threadsPerWorker, watchLauncher } from '../../engine/launch.js';
import type { Graph } from '../../onnx/graph.js';
import { loadModel } from '../../onnx/validate.js';
import { classifierParameters, declareClassCount, foldBatchNorm, freezeLayers, transferModel } from '../../passes/index.js';
import { formatPercent } from '../../report/format.js';
import { evaluate } from '../../runtime/evaluate.js';
import { openSession } from '../../runtime/ort.js';
import { buildZooModel, isZooName, zooInputSize, type ZooName } from '../../zoo/index.js';
import { checkDataDir, checkImageSize, loadTrainTest, withImageSizeFlag, modelInputSize, normalizationFor, modelChannels, recordedClasses, withGivenNormalization, requireDataFolder, zooStatisticsNote } from '../../data/model-data.js';
import { recordedResize, trainedResize, withTrainedResize } from '../../data/model-resize.js';
import { describeResize, type ResizeMode } from '../../data/image-folder.js';
import { normalizationMetadata, readPreprocessing, withClassNames } from '../../zoo/metadata.js';
import { rawPixelInput } from '../../onnx/image-input.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { fraction, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, withImageSize, withJson, withResize, channelsArg, CHANNEL_COUNTS, MEAN_HELP, meanList, patternList, STD_HELP, stdList, augmentArg, AUGMENT_HELP, type AugmentMode } from '../options.js';
import { forBatches, type WorkingModel } from '../../data/model-batches.js';
import { blownUpWarning, learnedNothingWarning, watchTrainingLoad, checkAugmentFlags, checkOptimizerFlags, checkTrainingFlags, explainInterrupt, foldedNote, freshStartNote, leftOverNote, limitsBeyondDataNote, resumedNote, sharedTrainOptions, trainingGraph, trainingProgress } from '../train-options.js';
import { checkModelFile, checkTrainingOutputs } from '../paths.js';
import { writeMadeModel } from '../write-result.js';
import { hasIntegerWeights, integerWeightsError } from '../../passes/freeze-layers.js';
import { modelSteps, withStep } from '../../onnx/provenance.js';

interface TrainCliOptions extends CommonOptions {
  imageSize?: [number, number];
  model: string;
  data: string;
  dataDir?: string;
  out: string;
  epochs: number;
  batch: number;
  device: string;
  lr?: number;
  optimizer: string;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  schedule: string;
  warmup?: number;
  labelSmoothing: number;
  seed: number;
  width: number;
  channels?: 1 | 3;
  classes?: number;
  trainLimit?: number;
  testLimit?: number;
  threads?: number;
  augment?: AugmentMode | false;
  checkpointDir?: string;
  resume?: string | boolean;
  log?: string;
  gpuPricePerHour: number;
  cudaGraphs?: boolean;
  precision: PrecisionChoice;
  fold: boolean;
  reinsertBn: boolean;
  verify: boolean;
  nproc?: number;
  syncBn?: boolean;
  distTimeout: number;
  distBucketMb: number;
  newHead?: boolean;
  freezeBackbone?: boolean;
  freeze?: string[];
  mean?: number[];
  std?: number[];
  resize?: ResizeMode;
}

export function registerTrain(program: Command): void {
  withResize(withImageSize(withJson(
    program
      .command('train')
      .description('train a zoo model or an ONNX CNN with the LibTorch engine and write an inference ONNX (BN folded)')
      .requiredOption('--model <name|file.onnx>', 'a zoo name (e.g. resnet18-cifar) or an .onnx file to fine-tune')
      .requiredOption('--data <cifar10|folder>', "'cifar10', or a folder with train/ and test/ (or val/) subfolders of class folders")
      .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download)')
      .requiredOption('-o, --out <file.onnx>', 'where to write the trained model')
      .option('--epochs <n>', 'passes over the training set', positiveInt('--epochs'), 30)
      .option('--batch <n>', 'images per step', positiveInt('--batch'), 128)
      .option('--device <cpu|cuda>', 'where to train', oneOf('--device', ['cpu', 'cuda']), 'cpu')
      .option('--precision <p>', 'auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16 (also on CPUs with AMX: steps 2.45× shorter on ResNet18-CIFAR); fp16 is refused (no loss scaling)', oneOf('--precision', PRECISIONS), 'auto')
      .option('--lr <x>', 'peak learning rate (default 0.1 for sgd, 0.001 for adamw)', positiveNumber('--lr'))
      .option('--optimizer <sgd|adamw>', 'update rule', oneOf('--optimizer', ['sgd', 'adamw']), 'sgd')
      .option('--momentum <x>', 'SGD momentum (Nesterov unless --no-nesterov), default 0.9', fraction('--momentum'))
      .option('--no-nesterov', 'SGD: classic momentum instead of Nesterov\'s')
      .option('--weight-decay <x>', 'default 5e-4 (sgd) or 0.05 (adamw); never on BN and biases', nonNegativeNumber('--weight-decay'))
      .option('--schedule <name>', 'onecycle, cosine (with warm-up) or constant', oneOf('--schedule', ['onecycle', 'cosine', 'constant']), 'onecycle')
      .option('--warmup <fraction>', 'OneCycle rise / cosine warm-up, as a fraction of all steps', fraction('--warmup'))
      .option('--label-smoothing <x>', 'cross-entropy label smoothing', fraction('--label-smoothing'), 0)
      .option('--seed <n>', 'seed for init (zoo), shuffling, augmentation and dropout', nonNegativeInt('--seed'), 0)
      .option('--width <w>', 'zoo models: channel width multiplier', positiveNumber('--width'), 1)
      .option('--classes <k>', 'zoo models: number of classes (default: the data set\'s)', positiveInt('--classes'))
      .option('--channels <n>', 'zoo models: image channels, 3 (RGB, default) or 1 (grayscale: image folders are read as luma)', channelsArg)
      .option('--new-head', 'an .onnx model: replace its classifier by a fresh one for the data\'s classes (fine-tune a pretrained model on your own classes)')
      .option('--freeze-backbone', 'an .onnx model: train only its classifier; the rest stays as it is (BatchNormalization at its running statistics)')
      .option('--freeze <layers>', 'keep these layers as they are while the rest trains: PyTorch module names or globs, comma-separated (e.g. conv1,layer1 or \'layer1.*\'; `slim info M --layers` lists them); a frozen Conv\'s BatchNormalization is frozen with it, at its running statistics', patternList)
      .option('--mean <r,g,b|v>', `${MEAN_HELP}; recorded in the written model`, meanList('--mean', CHANNEL_COUNTS))
      .option('--std <r,g,b|v>', STD_HELP, stdList('--std', CHANNEL_COUNTS))
      .option('--train-limit <n>', "train on N training images only (CIFAR-10's first N; an image folder's taken across its classes)", positiveInt('--train-limit'))
      .option('--test-limit <n>', "evaluate on N test images only (CIFAR-10's first N; an image folder's taken across its classes)", positiveInt('--test-limit'))
      .option('--threads <n>', 'LibTorch CPU threads (default: the cores this process may use: its CPU affinity and cgroup quota)', positiveInt('--threads'))
      .option('--augment <mode>', AUGMENT_HELP, augmentArg)
      .option('--no-augment', 'no random crop and flip')
      .option('--checkpoint-dir <dir>', 'write <dir>/last.ckpt atomically after every epoch')
      .option('--resume [file]', 'continue from <checkpoint-dir>/last.ckpt (or the given checkpoint)')
      .option('--log <file.jsonl>', 'append one JSON line per epoch (and start/end events)')
      .option('--cuda-graphs', 'CUDA + SGD: capture the training step once and replay it (fewer kernel launches per step)')
      .option('--gpu-price-per-hour <x>', 'for the cost estimate of CUDA runs', positiveNumber('--gpu-price-per-hour'), 2.5)
      .option('--no-fold', 'keep BatchNormalization nodes in the written model')
      .option('--no-reinsert-bn', 'a model without BatchNormalization (BN folded at export): train its weights as they are instead of with BN re-inserted')
      .option('--no-verify', 'skip scoring the written model with ONNX Runtime')
      .option('--nproc <n>', 'data-parallel: start N local workers (one per GPU with --device cuda, else N CPU processes); --batch and --lr stay global', positiveInt('--nproc'))
      .option('--sync-bn', 'data-parallel: batch-norm statistics over all ranks (SyncBatchNorm)')
      .option('--dist-timeout <seconds>', 'data-parallel: how long a rank waits for the others (start-up, each all-reduce) before stopping with an error that names the rank', positiveNumber('--dist-timeout'), 300)
      .option('--dist-bucket-mb <mb>', 'data-parallel: gradient bucket size; each full bucket is all-reduced while backward goes on', positiveNumber('--dist-bucket-mb'), 25),
  )))
    .addHelpText('after', [
      '',
      'Examples:',
      '  slim train --model resnet18-cifar --width 0.25 --data cifar10 --epochs 10 --out r18.onnx',
      '  slim train --model resnet18-cifar --data cifar10 --device cuda --batch 512 --epochs 24 --out r18.onnx',
      '  slim train --model model.onnx --data cifar10 --epochs 2 --lr 0.01 --checkpoint-dir runs/a --resume --out tuned.onnx',
      '  slim train --model mobilenet_v3_imagenet.onnx --new-head --freeze-backbone --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --data photos/ --epochs 5 --lr 0.01 --out photos.onnx',
      '  slim train --model resnet18_photos.onnx --freeze conv1,layer1,layer2 --data photos/ --epochs 5 --lr 0.01 --out tuned.onnx',
      '  slim train --model resnet18-cifar --data cifar10 --nproc 2 --batch 256 --checkpoint-dir runs/b --out r18.onnx',
      '  torchrun --nproc-per-node 4 --no-python slim train --model resnet18-cifar --data cifar10 --device cuda --out r18.onnx',
    ].join('\n'))
    .action(async (options: TrainCliOptions, command: Command) => {
      if (!isZooName(options.model) && command.getOptionValueSource('width') === 'cli') {
        throw usageError(`--width builds zoo models; ${options.model} keeps the widths it was exported with`, 'drop --width (slim prune --structured makes a model narrower)');
      }
      checkTrainingOutputs(options, [options.model]);
      checkTransferFlags(options);
      checkOptimizerFlags(options);
      checkAugmentFlags(command);
      checkTrainingFlags(options);
      if (options.nproc !== undefined && options.nproc > 1) {
        if (options.cudaGraphs) throw usageError('--cuda-graphs does not work with data-parallel training (--nproc) yet', 'drop one of the two');
        // Said once here, not by every worker after it started.
        if (!isCifar10(options.data)) await requireDataFolder(options.data, '--data', 'pass --data cifar10, or a folder with train/ and test/ subfolders of class folders');
        await launchTraining({
          nproc: options.nproc,
          device: options.device as 'cpu' | 'cuda',
          argv: process.argv.slice(2),
          ...(options.threads !== undefined ? { threads: options.threads } : {}),
          ...(options.checkpointDir ? { checkpointDir: options.checkpointDir } : {}),
        });
        return;
      }
      // Started by `--nproc`, torchrun, srun or a PyTorchJob: join the others before anything slow.
      const distEnv = readDistributedEnv();
      if (distEnv) watchLauncher();
      const distributed = distEnv
        ? await DistributedTraining.start({
            env: distEnv,
            device: options.device as 'cpu' | 'cuda',
            syncBatchNorm: options.syncBn ?? false,
            timeoutSeconds: options.distTimeout,
            bucketBytes: Math.round(options.distBucketMb * 2 ** 20),
            ...(options.checkpointDir ? { checkpointDir: options.checkpointDir } : {}),
          })
        : undefined;
      const writer = distributed?.writer ?? true;
      // CPU ranks on one host share its cores (torchrun, srun): split them unless --threads says otherwise.
      if (distEnv && options.device === 'cpu' && options.threads === undefined) options.threads = threadsPerWorker(distEnv.localWorldSize);
      if (options.syncBn && !distributed) log('note: --sync-bn only matters with several ranks (--nproc, torchrun)');
      // An .onnx model is read first: its input size decides how image folders are resized.
      const onnxFile = isZooName(options.model) ? undefined : await loadOnnxModel(options.model, options, !writer);
      const onnxModel = onnxFile?.graph;
      // An int8 model trains nothing: said before the data is read.
      if (onnxModel && hasIntegerWeights(onnxModel)) throw integerWeightsError(options.model);
      // A --freeze that names nothing is refused before the data is read (the model's own names; a new head keeps its node's).
      if (onnxModel && options.freeze) freezeLayers(onnxModel, options.freeze, { file: options.model });
      // The run's settings, known before the data: a --resume of a run with other ones is refused here.
      const settings = {
        epochs: options.epochs,
        batch: options.batch,
        device: options.device as 'cpu' | 'cuda',
        optimizer: options.optimizer as 'sgd' | 'adamw',
        schedule: options.schedule as 'onecycle' | 'cosine' | 'constant',
        labelSmoothing: options.labelSmoothing,
        seed: options.seed,
        gpuPricePerHour: options.gpuPricePerHour,
        file: options.model,
        command: 'slim train',
        seededStart: isZooName(options.model),
        // A model file is trained further (fine-tuning, a new head): where it starts is worth a point on the curve.
        scoreStart: !isZooName(options.model),
        ...sharedTrainOptions(options),
        // A checkpoint of a run without a new head (or with other statistics) must not resume this one.
        ...(options.newHead || options.mean || options.std || options.resize || !options.reinsertBn
          ? { resumeKey: { ...(options.newHead ? { new_head: true } : {}), ...(options.mean ? { mean: options.mean } : {}), ...(options.std ? { std: options.std } : {}), ...(options.resize ? { resize: describeResize(options.resize) } : {}), ...(options.reinsertBn ? {} : { reinsert_bn: false }) } }
          : {}),
      } satisfies RunSettings;
      await refuseOtherRun(settings);
      checkDataDir(options);
      if (onnxModel && options.channels !== undefined) {
        throw usageError(`--channels builds zoo models; ${options.model} takes ${modelChannels(onnxModel)}-channel images as it was exported`, 'drop --channels');
      }
      if (!onnxModel && options.channels === 1 && isCifar10(options.data)) {
        throw usageError("--channels 1 builds a grayscale model but CIFAR-10's images are RGB", 'drop --channels, or train on an image folder (read as grayscale for this model)');
      }
      // A zoo model is built at --image-size (global pooling takes any size); CIFAR-10's images are 32×32.
      const zooSize = onnxModel ? undefined : (options.imageSize ?? zooInputSize(options.model as ZooName));
      if (zooSize && options.imageSize && isCifar10(options.data) && (zooSize[0] !== 32 || zooSize[1] !== 32)) {
        throw usageError(`--image-size ${zooSize.join(',')} but CIFAR-10's images are 32×32`, 'drop --image-size for CIFAR-10 (it builds the zoo model for image folders, whose images are resized to it)');
      }
      const data = await loadTrainTest(options.data, {
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
        size: onnxModel ? modelInputSize(onnxModel) : zooSize,
        channels: onnxModel ? modelChannels(onnxModel) : (options.channels ?? 3),
        trainLimit: options.trainLimit,
        testLimit: options.testLimit,
        // A model that records class names learns the data's images by name (its outputs keep their meaning).
        classes: onnxModel && !options.newHead ? recordedClasses(onnxModel, options.model, { learns: true, trains: (n) => `pass --new-head for a model of the data's ${n.data} classes, or train on images of all ${n.model}` }) : undefined,
        recordedResize: onnxModel ? recordedResize(onnxModel, options.model) : undefined,
        resize: options.resize,
        quiet: !writer,
      });
      // Before any training: a model that cannot take these images would fail only at the end.
      if (onnxModel) {
        checkImageSize(onnxModel, data.train, options.model, '--data');
        if (!options.newHead) checkClassCount(onnxModel, data.train.classes.length, options.model);
      }
      for (const note of [leftOverNote(data.train.labels.length, options.trainLimit, options.batch), limitsBeyondDataNote({ train: data.train.labels.length, test: data.test.labels.length }, options), freshStartNote(options)]) if (writer && note) log(note);
      const classes = options.classes ?? data.train.classes.length;
      const built = onnxModel
        ? transferFromFile(onnxModel, options, data.train.classes.length, writer, onnxFile?.normalization !== undefined)
        // A zoo model records CIFAR-10's statistics (grayscale: 0.5) unless --mean/--std give the data's own.
        : { graph: withGivenNormalization(buildZooModel(options.model, { width: options.width, seed: options.seed, classes, ...(classes === data.train.classes.length ? { classNames: data.train.classes } : {}), ...(options.channels ? { channels: options.channels } : {}), ...(options.imageSize ? { imageSize: options.imageSize } : {}) }), options) };
      // Said before training: the statistics a model file that records none is trained with, and those a zoo model records on photos.
      if (onnxModel && writer) normalizationFor(built.graph, {}, options.model);
      if (!onnxModel && writer && !options.mean && !isCifar10(options.data)) log(zooStatisticsNote(options.model, data.train));
      const freshHead = options.newHead ? classifierParameters(built.graph) : undefined;
      const frozenLayers = options.freeze ? freezeLayers(built.graph, options.freeze, { file: options.model, ...(freshHead ? { freshHead } : {}) }) : undefined;
      if (frozenLayers && writer) frozenLayers.notes.forEach((line) => log(line));
      const frozen = built.frozen ?? frozenLayers?.frozen;
      const graph = built.frozen ? built.graph : await trainingGraph(frozenLayers?.graph ?? built.graph, data.train, { ...options, quiet: !writer, file: options.model, ...(frozen ? { frozen } : {}) });
      // Rank 0 alone draws the bar; the hint is said once training runs, so a usage error stays the only line.
      const bar = writer ? trainingProgress('train', () => precisionHint(options.device as 'cpu' | 'cuda', options.precision)) : undefined;
      const interrupt = distEnv ? undefined : explainInterrupt('slim train', options);
      const otherLoad = watchTrainingLoad(options.device, !!distEnv, options.threads ?? usableCores());
      const result = await trainModel({
        ...settings,
        graph,
        origin: built.graph,
        data,
        ...(bar ? { onProgress: bar.onProgress, onEpoch: bar.onEpoch } : {}),
        ...(frozen ? { frozen } : {}),
        ...(distributed ? { distributed } : {}),
      }).catch((e: unknown) => {
        interrupt?.stop();
        throw e;
      }).finally(() => bar?.stop());
      const load = otherLoad();
      // From here a Ctrl-C says that training had finished, and what of it was kept.
      interrupt?.trained(options.out);
      // Rank 0 alone writes the model and reports; the others are done.
      if (!writer) return distributed?.finish();

      const last = result.history.at(-1);
      let out: Graph = options.fold ? foldBatchNorm(result.graph) : result.graph;
      const folded = foldedNote(result.graph, out, options.fold);
      if (onnxFile) out = onnxFile.restore(out);
      // Restoring the exported output form declares the old class count again.
      if (options.newHead) declareClassCount(out, data.train.classes.length);
      // The data's class names (in the order it was trained on), for eval and deploy to read.
      out = withClassNames(out, data.train.classes);
      // How its images were resized, for every later read of a folder for it.
      out = withTrainedResize(out, trainedResize(options.data, options.resize, onnxModel ? recordedResize(onnxModel, options.model) : undefined));
      // A model file that recorded no mean/std was trained with CIFAR-10's (grayscale: 0.5): recorded, so
      // eval and deploy feed it what it learned from without a note each time.
      if (rawPixelInput(out)?.dtype !== 'uint8' && !readPreprocessing(out).normalization) out = { ...out, metadata: { ...out.metadata, ...normalizationMetadata(normalizationFor(out, {})) } };
      // A new head and frozen layers are part of how it was made (the history said "trained", as if from scratch).
      const replaced = onnxModel?.outputs[0]?.shape?.[1];
      const how = {
        // A model slimkit did not make (a PyTorch export) is named: its history starts here (a distilled one names its teacher).
        ...(onnxModel && modelSteps(onnxModel.metadata).length === 0 ? { from: path.basename(options.model) } : {}),
        ...(options.newHead ? { new_head: { classes: data.train.classes.length, ...(typeof replaced === 'number' ? { replaced } : {}) } } : {}),
        ...(options.freezeBackbone ? { frozen: 'backbone' } : options.freeze ? { frozen: options.freeze } : {}),
      };
      out = withStep(out, 'slimkit.training', { epochs: options.epochs, batch: options.batch, device: options.device, ...how, test_top1: result.testAccuracy, data: data.test.name, eval_images: data.test.labels.length, train_images: Math.min(options.trainLimit ?? Infinity, data.train.labels.length) });
      const { bytes } = await writeMadeModel(out, options.out, { checkpointDir: options.checkpointDir });
      interrupt?.written();
      let ortTop1: number | undefined;
      if (options.verify) {
        const session = await openSession(options.out, options.threads ? { threads: options.threads } : {});
        try {
          const scored = await evaluate(session, data.test, {
            normalization: normalizationFor(out, {}),
            batchSize: 256,
            ...(options.testLimit ? { limit: options.testLimit } : {}),
          });
          ortTop1 = scored.top1;
        } finally {
          await session.close();
        }
      }
      interrupt?.stop();
      const summary = {
        model: options.model,
        out: options.out,
        size_bytes: bytes,
        epochs: result.history.length,
        steps: result.steps,
        precision: resolvedPrecision(options.device as 'cpu' | 'cuda', options.precision),
        ...(result.startAccuracy !== undefined ? { start_top1: result.startAccuracy } : {}),
        test_top1: result.testAccuracy,
        ...(ortTop1 !== undefined ? { onnxruntime_top1: ortTop1 } : {}),
        seconds: result.seconds,
        // Every rank's (the engine counts them).
        gpu_seconds: result.gpuSeconds,
        estimated_cost: result.estimatedCost,
        ...load.json,
        // The threads it trained on beside the cores it had (a trial read "cores: 2" as the thread count).
        ...(options.device === 'cpu' ? { threads: options.threads ?? usableCores() } : {}),
        ...(result.resumedFrom !== undefined ? { resumed_from_epoch: result.resumedFrom } : {}),
        ...(distributed
          ? {
              ranks: distributed.worldSize,
              backend: distributed.backend,
              sync_bn: distributed.syncBatchNorm,
              gradient_buckets: distributed.overlap.buckets,
              buckets_overlapped_with_backward: distributed.overlap.overlapped,
            }
          : {}),
        history: result.history.map(epochJson),
      };
      printResult(options, summary, () =>
        [
          `trained ${options.model} for ${result.history.length} epoch${result.history.length === 1 ? '' : 's'} (${result.steps} step${result.steps === 1 ? '' : 's'})${distributed ? ` on ${distributed.worldSize} ranks (${distributed.backend})` : ''} in ${result.seconds.toFixed(1)} s` +
            (summary.gpu_seconds > 0 ? ` — ${summary.gpu_seconds.toFixed(1)} GPU-seconds, about $${summary.estimated_cost.toFixed(4)} at $${options.gpuPricePerHour}/GPU-hour` : ''),
          ...resumedNote(result.resumedFrom, options.epochs),
          `test top-1 ${formatPercent(result.testAccuracy)} (engine${result.startAccuracy !== undefined ? `; ${formatPercent(result.startAccuracy)} before` : ''})${ortTop1 !== undefined ? `, ${formatPercent(ortTop1)} (ONNX Runtime, written model)` : ''}` +
            (last ? `; last epoch train loss ${last.trainLoss.toFixed(3)}` : ''),
          `wrote ${options.out}${folded}`,
        ].join('\n'),
      );
      const blownUp = blownUpWarning(result.testAccuracy, last?.testLoss, data.train.classes.length);
      if (blownUp) log(blownUp);
      const nothing = learnedNothingWarning(result.testAccuracy, last?.trainLoss, last?.testLoss, data.train.classes.length);
      if (nothing) log(nothing);
      if (load.note) log(load.note);
      distributed?.finish();
    });
}

async function loadOnnxModel(file: string, o: Pick<TrainCliOptions, 'imageSize' | 'data' | 'mean' | 'std'>, quiet: boolean): Promise<WorkingModel> {
  checkModelFile(file, '--model');
  // CIFAR-10's images have one size (a free-size model takes it); an image folder's do not, and its loader asks for --image-size.
  const graph = withImageSizeFlag((await loadModel(file)).graph, file, o.imageSize, [o.data], { quiet });
  // --mean/--std describe a float32 channels-last input (the network's statistics follow from them); a uint8 one is refused there.
  return forBatches(graph, file, { quiet, data: { ...(o.mean ? { mean: o.mean } : {}), ...(o.std ? { std: o.std } : {}) } });
}

/** --new-head, --freeze-backbone and --freeze work on a model file (a zoo model is built fresh: nothing to keep). */
function checkTransferFlags(options: TrainCliOptions): void {
  if (options.freeze && options.freezeBackbone) throw usageError('--freeze-backbone already keeps every layer but the classifier as it is', 'drop --freeze, or name the layers to keep with --freeze alone');
  if (isZooName(options.model)) {
    const given = (['newHead', 'freezeBackbone', 'freeze'] as const).filter((k) => options[k] !== undefined);
    if (given.length) {
      const flags = given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
      const classes = options.newHead ? ' (--classes sets a zoo model\'s class count)' : '';
      throw usageError(`${flags} work${given.length === 1 ? 's' : ''} on an .onnx model; ${options.model} is built fresh from the zoo`, `drop ${given.length === 1 ? 'it' : 'them'}${classes}, or pass a pretrained .onnx as --model`);
    }
  }
}

/**
 * A model file as training starts from it: with a fresh classifier for `classes` classes (--new-head),
 * with only that classifier trainable (--freeze-backbone: everything else named in `frozen`, BN frozen
 * at its running statistics), with --mean/--std recorded for training, scoring and the written model.
 */
function transferFromFile(model: Graph, options: TrainCliOptions, classes: number, writer: boolean, preprocessed: boolean): { graph: Graph; frozen?: Set<string> } {
  // The network inside a model that preprocesses its pixels records its own statistics (forBatches read --mean/--std for them).
  const r = transferModel(preprocessed ? model : withGivenNormalization(model, options), { newHead: !!options.newHead, freezeBackbone: !!options.freezeBackbone, classes, seed: options.seed });
  if (writer) r.notes.forEach((line) => log(line));
  return { graph: r.graph, ...(r.frozen ? { frozen: r.frozen } : {}) };
}

/** A model file scores a fixed number of classes: training it on data with another count would fail only when it is written. */
function checkClassCount(graph: Graph, classes: number, file: string): void {
  const scores = graph.outputs[0]?.shape?.[1];
  if (typeof scores === 'number' && scores !== classes) {
    throw usageError(`${file} scores ${scores} classes but --data has ${classes}`, 'pass --new-head to give it a fresh classifier for these classes (transfer learning), or train it on data with its classes');
  }
}
