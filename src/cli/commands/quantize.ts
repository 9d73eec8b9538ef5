import { shellCommand } from '../../util/shell.js';
import { qatBelowStartLine } from '../../compress/qat/index.js';
import { refuseLaunchedRanks } from '../../engine/distributed-env.js';
import { Option, type Command } from 'commander';
import { inputError, usageError } from '../../errors.js';
import { refuseQuantized } from '../../toolkit.js';
import type { Graph } from '../../onnx/graph.js';
import { checkDynamicCpu } from '../../compress/quantize/dynamic.js';
import { withinBudget } from '../../compress/quantize/mixed-precision.js';
import { loadModelForRuntime, validateGraph, type RuntimeModel } from '../../onnx/validate.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import { withMeasuredOpaqueTypes } from '../../runtime/opaque-types.js';
import { formatBytes, formatPercent, formatPointChange } from '../../report/format.js';
import {
  AUTO_HELD_OUT_IMAGES,
  CALIBRATION_METHODS,
  convertFloat16,
  CPU_CHOICES,
  hostInt8Cpu,
  saturationNote,
  DEFAULT_STATIC,
  ortKernels,
  unfusedNodes,
  prepareFloatGraph,
  quantizeDynamic,
  type CalibrationMethod,
  type CpuChoice,
} from '../../compress/quantize/index.js';
import { QAT_DEFAULTS } from '../../compress/qat/index.js';
import { normalizationFor, withGivenNormalization, withImageSizeFlag, type DataOptions } from '../../data/model-data.js';
import { recordedResize, withGivenResize } from '../../data/model-resize.js';
import { asExported, forBatches } from '../../data/model-batches.js';
import { UPGRADE_OPSET } from '../../ops/op-def.js';
import { upgradesOpset } from '../../passes/upgrade-opset.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { CHANNEL_COUNTS, MEAN_HELP, nonNegativeInt, meanList, oneOf, STD_HELP, positiveInt, positiveNumber, stdList, withImageSize, withJson, withResize, withThreads } from '../options.js';
import { folderResize, loadEvalData, top1 } from './quantize-eval.js';
import { checkQatData, checkQatFlags, qatFineTune, refuseOtherQatRun } from './quantize-qat.js';
import type { InterruptExplainer } from '../train-options.js';
import { hasBatchNorm } from '../../engine/reinsert-batchnorm.js';
import { quantizeStatic, splitList, writeReport, type StaticRun } from './quantize-static.js';
import { isCifar10 } from '../../data/cifar10.js';
import type { ResizeMode } from '../../data/image-folder.js';
import { checkCheckpointDir, checkDistinctOutputs, checkLogFile, checkOutputFile } from '../paths.js';
import { writeMadeModel } from '../write-result.js';
import { int8KernelsSaturate } from '../../util/cpu-flags.js';
import { exactKernelsTwin } from '../../compress/quantize/cpu.js';
import { withLastStepAmended, withStep } from '../../onnx/provenance.js';

type Mode = 'static' | 'dynamic' | 'fp16' | 'fp16-weights';
const MODES: readonly Mode[] = ['static', 'dynamic', 'fp16', 'fp16-weights'];

export interface QuantizeCliOptions extends CommonOptions {
  imageSize?: [number, number];
  resize?: ResizeMode;
  output: string;
  mode: Mode;
  calib?: string;
  dataDir?: string;
  samples: number;
  seed: number;
  method: CalibrationMethod | 'auto';
  percentile: number;
  perTensor?: boolean;
  activationType: 'uint8' | 'int8';
  reduceRange?: boolean;
  cpu: CpuChoice;
  keepFirst?: boolean;
  keepLast?: boolean;
  exclude?: string;
  biasCorrection: boolean;
  equalize?: boolean;
  maxDrop?: number;
  eval?: string;
  evalLimit?: number;
  report?: string | boolean;
  threads?: number;
  mean?: number[];
  std?: number[];
  qat?: boolean;
  bnEpochs?: number;
  data?: string;
  epochs: number;
  batch: number;
  lr?: number;
  optimizer: 'sgd' | 'adamw';
  lsq?: boolean;
  distill?: boolean;
  device: 'cpu' | 'cuda';
  trainLimit?: number;
  testLimit?: number;
  checkpointDir?: string;
  resume?: string | boolean;
  log?: string;
}

export function registerQuantize(program: Command): void {
  withThreads(withResize(withImageSize(
    withJson(
      program
        .command('quantize')
        .description('int8 post-training quantization (QDQ, calibrated), dynamic int8 or float16 conversion')
        .argument('<model>', 'a float .onnx model')
        .requiredOption('-o, --output <file>', 'where to write the quantized model')
        .addOption(new Option('--mode <mode>', 'static: int8 weights and activations (calibrated); dynamic: int8 MatMul/Gemm weights, activations at run time; fp16: float16 model; fp16-weights: float16 storage only').choices(MODES).argParser(oneOf('--mode', MODES)).default('static'))
        .option('--calib <name|folder>', "calibration images: 'cifar10' (train split) or a folder of images")
        .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download to ~/.cache/slimkit)')
        .option('--samples <n>', 'calibration images, drawn at random', positiveInt('--samples'), 512)
        .option('--seed <n>', 'seed of the calibration sample', nonNegativeInt('--seed'), 0)
        .addOption(new Option('--method <method>', `how activation ranges are chosen from the calibration histograms; auto: build all four from one calibration and keep the one whose outputs match fp32 best on ${AUTO_HELD_OUT_IMAGES} held-out images`).choices([...CALIBRATION_METHODS, 'auto']).argParser(oneOf('--method', [...CALIBRATION_METHODS, 'auto'])).default('auto'))
        .option('--percentile <p>', 'percentile method: share of values kept inside the range, in percent', positiveNumber('--percentile'), DEFAULT_STATIC.calibration.percentile)
        .option('--per-tensor', 'one weight scale per tensor instead of per output channel')
        .addOption(new Option('--activation-type <type>', 'uint8 (asymmetric) or int8 (symmetric) activations').choices(['uint8', 'int8']).argParser(oneOf('--activation-type', ['uint8', 'int8'])).default('uint8'))
        .option('--reduce-range', '7-bit weights, for x86 CPUs with AVX2 but no VNNI')
        .addOption(new Option('--cpu <kind>', "the CPU whose ONNX Runtime int8 Conv kernels the model is laid out for (same outputs either way): amx (Intel AMX-INT8: Sapphire Rapids and later), generic (VNNI / arm64 / wasm), avx2 (x64 without VNNI: uint8 weights, whose kernels do not saturate); auto: amx on an AMX machine (each Conv timed on both kernels at --threads, keeping the faster), else generic — never avx2, whose kernels are slower on other CPUs (on a CPU without VNNI the command notes it)").choices(CPU_CHOICES).argParser(oneOf('--cpu', CPU_CHOICES)).default(DEFAULT_STATIC.cpu))
        .option('--keep-first', 'keep the first Conv/Gemm/MatMul layer in float')
        .option('--keep-last', 'keep the last Conv/Gemm/MatMul layer in float')
        .option('--exclude <nodes>', 'comma-separated node names to keep in float (--report lists them)')
        .option('--bias-correction', 'correct the mean output shift that weight rounding causes (default)')
        .option('--no-bias-correction', 'leave biases as they are')
        .option('--equalize', 'cross-layer equalization of Conv → ReLU → Conv pairs before calibration')
        .option('--max-drop <pt>', 'keep the most sensitive layers in float until top-1 drops by at most this many points (chosen on every other evaluation image; top-1 is reported on the others)', positiveNumber('--max-drop'))
        .option('--eval <name|folder>', "evaluation images for top-1 before/after: 'cifar10' (test split) or a folder (with --calib cifar10, --eval-limit or --max-drop alone evaluate on CIFAR-10 test; without any of them there is no evaluation)")
        .option('--eval-limit <n>', "evaluate on N images only: CIFAR-10's first N (it comes shuffled), a folder's N taken across its classes", positiveInt('--eval-limit'))
        .option('--report [path]', 'write the SQNR / sensitivity report: PATH.md, PATH.json, PATH.svg (default: next to the output)')
        .option('--mean <r,g,b|v>', MEAN_HELP, meanList('--mean', CHANNEL_COUNTS))
        .option('--std <r,g,b|v>', STD_HELP, stdList('--std', CHANNEL_COUNTS))
        .option('--qat', 'quantization-aware training: fine-tune the calibrated int8 model with its quantization simulated, then write it')
        .option('--data <cifar10|folder>', "--qat training data: 'cifar10', or a folder with train/ and test/ subfolders (default calibration images: its training split)")
        .option('--epochs <n>', '--qat: passes over the training data', positiveInt('--epochs'), 1)
        .option('--batch <n>', '--qat: images per step', positiveInt('--batch'), QAT_DEFAULTS.batch)
        .option('--lr <x>', `--qat: peak learning rate, cosine decay (default ${QAT_DEFAULTS.lr} for sgd, ${QAT_DEFAULTS.adamwLr} for adamw)`, positiveNumber('--lr'))
        .addOption(new Option('--optimizer <name>', '--qat: update rule').choices(['sgd', 'adamw']).argParser(oneOf('--optimizer', ['sgd', 'adamw'])).default('sgd'))
        .option('--bn-epochs <n>', '--qat: train the first N epochs with the model\'s BatchNormalization live (batch statistics), then fold and freeze it', nonNegativeInt('--bn-epochs'))
        .option('--lsq', '--qat: learn the quantization scales too (LSQ) instead of keeping the calibrated ones')
        .option('--no-distill', '--qat: train on the labels alone (default: also distill from the float model, alpha 0.5, T 4: measured +0.25 pt over plain QAT)')
        .addOption(new Option('--device <device>', '--qat: where to train').choices(['cpu', 'cuda']).argParser(oneOf('--device', ['cpu', 'cuda'])).default('cpu'))
        .option('--train-limit <n>', '--qat: train on N training images only (CIFAR-10\'s first N; an image folder\'s taken across its classes)', positiveInt('--train-limit'))
        .option('--test-limit <n>', '--qat: evaluate each epoch on N test images only (default: --eval-limit)', positiveInt('--test-limit'))
        .option('--checkpoint-dir <dir>', '--qat: write <dir>/last.ckpt atomically after every epoch (with --bn-epochs: <dir>/bn-live/ and <dir>/folded/)')
        .option('--resume [file]', '--qat: continue from the checkpoint in --checkpoint-dir (or the given file, except with --bn-epochs, whose phases each find their own)')
        .option('--log <file.jsonl>', '--qat: append one JSON line per epoch'),
    )),
  ))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  slim quantize model.onnx -o model.int8.onnx --calib cifar10 --data-dir ../shared/data/cifar10',
        '  slim quantize model.onnx -o model.int8.onnx --calib cifar10 --eval-limit 2000 --max-drop 0.5 --json',
        '  slim quantize model.onnx -o model.int8.onnx --calib ./images --eval ./val-images --report',
        '  slim quantize model.onnx -o model.fp16.onnx --mode fp16',
        '  slim quantize model.onnx -o model.int8.onnx --qat --epochs 2 --data cifar10 --data-dir ../shared/data/cifar10',
      ].join('\n'),
    )
    .action(async (file: string, options: QuantizeCliOptions, command: Command) => {
      // Calibration and int8 flags given for a mode that ignores them would do nothing, silently.
      if (options.mode !== 'static') {
        const applies = options.mode === 'dynamic' ? ['perTensor', 'reduceRange', 'cpu', 'exclude'] : [];
        for (const key of ['method', 'percentile', 'samples', 'seed', 'perTensor', 'activationType', 'reduceRange', 'cpu', 'keepFirst', 'keepLast', 'exclude', 'biasCorrection']) {
          if (command.getOptionValueSource(key) === 'cli' && !applies.includes(key)) {
            const flag = key === 'biasCorrection' && options.biasCorrection === false ? '--no-bias-correction' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
            throw usageError(`${flag} applies to --mode static, not ${options.mode}`, `drop ${flag}${applies.length ? ` (--mode ${options.mode} takes ${applies.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')})` : ''}`);
          }
        }
      }
      // --qat's flags with defaults: given without --qat they would do nothing, silently (the others are checked in checkQatFlags).
      for (const key of ['epochs', 'batch', 'optimizer', 'device']) {
        if (!options.qat && command.getOptionValueSource(key) === 'cli') throw usageError(`--${key} only applies with --qat`, `add --qat to fine-tune the int8 model, or drop --${key}`);
      }
      if (command.getOptionValueSource('percentile') === 'cli' && options.method !== 'percentile' && options.method !== 'auto') {
        throw usageError(`--percentile applies to --method percentile, not ${options.method}`);
      }
      await runQuantize(file, { ...options, biasCorrection: options.biasCorrection ?? DEFAULT_STATIC.biasCorrection });
    });
}

async function runQuantize(file: string, options: QuantizeCliOptions): Promise<void> {
  checkQatFlags(options);
  checkFlags(options);
  checkOutputFile(options.output, '-o', [file], { model: true });
  if (options.qat) refuseLaunchedRanks('slim quantize --qat');
  if (options.qat && options.checkpointDir) checkCheckpointDir(options.checkpointDir, options.resume);
  if (options.qat && options.log) checkLogFile(options.log, [file, options.output]);
  if (options.qat) checkDistinctOutputs([['-o', options.output], ['--checkpoint-dir', options.checkpointDir], ['--log', options.log]]);
  checkQatData(options);
  if (options.mode === 'dynamic') checkDynamicCpu(options.cpu);
  if (options.cpu === 'amx' && hostInt8Cpu() !== 'amx') {
    log('note: --cpu amx lays the int8 Convs out for Intel AMX, which this CPU lacks: the model computes the same here, but slower; leave --cpu auto unless it will run on an AMX machine');
  }
  // Scores measured here with int8 sums that saturate would be pinned on the model, not on this CPU.
  const scoresInt8 = options.eval !== undefined || options.evalLimit !== undefined || options.qat || options.maxDrop !== undefined || options.report !== undefined;
  // Either int8 mode can meet saturating sums; --cpu avx2 (uint8 weights) avoids them, as 7-bit weights do (--reduce-range).
  const canSaturate = (options.mode === 'static' || options.mode === 'dynamic') && !options.reduceRange && options.cpu !== 'avx2';
  // The written model's scores here are this CPU's (slimkit's own choices are judged on exact kernels).
  const scoredSaturating = canSaturate && scoresInt8 && int8KernelsSaturate();
  if (typeof options.report === 'string') checkOutputFile(`${options.report}.md`, '--report');
  const start = performance.now();
  const loaded = await loadModelForRuntime(file);
  const fileBytes = loaded.sizeBytes;
  refuseQuantized(loaded.graph, file);
  const floatGraph = await withUndefinedOpsFloat(loaded, file, options);
  // After the input is known to be a float model (an int8 one got this note before its refusal).
  if (scoredSaturating) {
    log("note: this CPU (x64 without VNNI) adds ONNX Runtime's int8 products in 16 bits, which can saturate: the int8 scores measured here may be below the model's on arm64, in the browser or on a VNNI CPU; for models that will run on CPUs like this one, quantize with --cpu avx2 (uint8 weights: exact, on slower kernels) or --reduce-range (7-bit weights: the fast kernels, coarser weights) and compare both with slim bench --data");
  }
  // --mean/--std become the model's recorded statistics: calibration, QAT and the written model use them.
  // --resize likewise: the written model records it, so eval, bench and deploy resize its images the same way.
  const sized = withGivenResize(withGivenNormalization(withImageSizeFlag(floatGraph, file, options.imageSize, [options.calib, options.eval, options.data]), options), options.resize, file);
  // Checked before calibration: live BN needs BatchNormalization nodes, which a BN-folded export has none of.
  if (options.qat && options.bnEpochs && !hasBatchNorm(sized)) {
    throw usageError(`--bn-epochs trains the model's BatchNormalization live, and ${file} has none (it was folded at export, as torch.onnx and slim train write models)`, 'drop --bn-epochs: QAT trains the folded model as it is');
  }
  if (upgradesOpset(sized)) {
    log(`note: ${file} is ONNX opset ${sized.opsets['']}: it is converted to opset ${UPGRADE_OPSET} first (per-channel QDQ needs it; nodes whose form changed are rewritten to the same function), and the written model is opset ${UPGRADE_OPSET}`);
  }
  // Calibration and QAT feed batches of many images.
  const data: DataOptions = { ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(options.mean ? { mean: options.mean } : {}), ...(options.std ? { std: options.std } : {}), ...folderResize(options, options.calib), recordedResize: recordedResize(sized, file) };
  const batch = options.mode === 'static' ? forBatches(sized, file, { data, flattenScores: false }) : asExported(sized);
  // A model exported for one batch size had its undefined ops measured at that size: again, now freed
  // (withMeasuredOpaqueTypes gives back a graph without such ops as it is).
  const graph = batch.graph !== sized ? (await withMeasuredOpaqueTypes(batch.graph, file)).graph : batch.graph;
  const normalization = batch.normalization ?? normalizationFor(graph, data, file);
  const threads = options.threads;
  // Loading the evaluation set is not part of quantizing: its time is left out of `seconds`.
  const evalLoadStart = performance.now();
  const evalData = await loadEvalData(options, graph, file);
  const evalLoadSeconds = (performance.now() - evalLoadStart) / 1000;

  let output: Graph;
  let extra: Record<string, unknown> = {};
  let run: StaticRun | undefined;
  if (options.qat) await refuseOtherQatRun(file, graph, options);
  if (options.mode === 'static') {
    run = await quantizeStatic(graph, options, { file, data, normalization, evalData });
    output = run.output;
    extra = run.extra;
  } else if (options.mode === 'dynamic') {
    const dyn = quantizeDynamic(prepareFloatGraph(graph, { equalize: false }).graph, {
      perChannel: !options.perTensor,
      reduceRange: options.reduceRange ?? false,
      cpu: options.cpu,
      exclude: splitList(options.exclude),
    });
    if (dyn.layers.length === 0) log('warning: no MatMul/Gemm layer with constant weights: nothing was quantized (for CNNs use --mode static)');
    const convs = graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'ConvTranspose').length;
    if (dyn.layers.length > 0 && convs > 0) log(`note: dynamic quantization quantizes MatMul/Gemm layers only: ${dyn.layers.length} here, and the ${convs} Conv(s) stay float — for CNNs --mode static quantizes them too`);
    extra['quantized_nodes'] = dyn.layers.length;
    extra['cpu'] = options.cpu === 'avx2' ? 'avx2' : 'generic';
    output = withStep(dyn.graph, 'slimkit.quantization', {
      mode: 'dynamic',
      weights: `int8 symmetric ${options.perTensor ? 'per tensor' : 'per channel'}${options.reduceRange ? ' (reduced range)' : ''}`,
      quantized_nodes: dyn.layers.length,
      cpu: extra['cpu'],
    });
  } else {
    const fp16 = convertFloat16(prepareFloatGraph(graph, { equalize: false }).graph, options.mode === 'fp16' ? 'full' : 'weights');
    if (fp16.clamped > 0) log(`warning: ${fp16.clamped} weight value(s) beyond ±65504 were clamped to the float16 range`);
    extra['converted_tensors'] = fp16.converted;
    output = withStep(fp16.graph, 'slimkit.quantization', { mode: options.mode });
  }

  // --max-drop chose on half the evaluation images: every top-1 from here on is the other half's.
  const scoredOn = run?.reportOn ?? evalData;
  // The reported "after" is the QAT model's; PTQ's top-1 stays in the qat section.
  let interrupt: InterruptExplainer | undefined;
  if (options.qat && run) {
    const qat = await qatFineTune(file, graph, run.result, options, normalization, scoredOn, scoredSaturating);
    output = qat.graph;
    extra['qat'] = qat.summary;
    interrupt = qat.interrupt;
  }

  output = batch.restore(output);
  validateGraph(output, { file: options.output });
  const { bytes } = await writeMadeModel(output, options.output).catch((e: unknown) => {
    interrupt?.stop();
    throw e;
  });
  // A QAT run's Ctrl-C from here: the model is written, only its checks are cut short.
  interrupt?.written();
  const seconds = (performance.now() - start) / 1000 - evalLoadSeconds;
  // Scored, it is written again with its score recorded (a few bytes more): its size is said once, in the summary.
  log(scoredOn ? `wrote ${options.output} in ${seconds.toFixed(1)} s; scoring it` : `wrote ${options.output}: ${formatBytes(fileBytes)} → ${formatBytes(bytes)} (${(bytes / fileBytes).toFixed(3)}×) in ${seconds.toFixed(1)} s`);
  const grew = largerNote(fileBytes, bytes, options.mode, file, options.output);
  if (grew) log(grew);
  // Unscored here, the model would meet this CPU's saturating sums first in `slim eval`, read as the model's loss.
  const unscoredSaturation = canSaturate && !scoresInt8 ? saturationNote(output, options.output) : undefined;
  if (unscoredSaturation) log(unscoredSaturation);

  // What ORT makes of it: fused integer kernels, and any float compute left (listed, never hidden).
  const kernels = await ortKernels(options.output, threads ? { threads } : {});
  extra['ort_ops'] = kernels.ops;
  extra['ort_float_ops'] = kernels.floatOps;
  extra['ort_float_islands'] = kernels.islandOps;
  if (kernels.addsInConvs > 0) extra['ort_float_adds_in_convs'] = kernels.addsInConvs;
  const keptFloat = new Set(((extra['float_nodes'] as { node: string }[] | undefined) ?? []).map((f) => f.node));
  const unfused = options.mode === 'static' ? unfusedNodes(output, kernels, keptFloat) : [];
  if (unfused.length) extra['ort_unfused_nodes'] = unfused.map((u) => ({ node: u.node, op_type: u.opType, reason: unfusedReason(options.activationType, u.opType) }));
  const summary: Record<string, unknown> = {
    file,
    output: options.output,
    mode: options.mode,
    ...(run ? { method: run.calibrated.options.calibration.method, samples: run.calibrated.calibSet.labels.length } : {}),
    size_bytes_before: fileBytes,
    size_bytes_after: bytes,
    size_ratio: bytes / fileBytes,
    seconds,
    ...extra,
  };
  if (scoredOn) {
    const before = await top1(graph, scoredOn, normalization, threads, 'eval float');
    // `output` is the written model: restored to take what the file took, so fed as that is.
    const after = await top1(output, scoredOn, batch.normalization ? normalizationFor(sized, data) : normalization, threads, 'eval quantized');
    const dropPt = Number(((before - after) * 100).toFixed(9));
    Object.assign(summary, { top1_before: before, top1_after: after, top1_drop_pt: dropPt, eval_images: Math.min(scoredOn.limit ?? Infinity, scoredOn.source.count), eval_data: scoredOn.source.name });
    // This CPU's int8 sums saturate: the top-1 the model has on arm64, VNNI x64 and in the browser too.
    const twin = exactKernelsTwin(output);
    if (twin) summary['top1_after_exact_kernels'] = await top1(twin, scoredOn, batch.normalization ? normalizationFor(sized, data) : normalization, threads, 'eval quantized (exact int8 kernels)');
    // Recorded in the written model, so its bundle can say what it scores (the file held only its float
    // parent's top-1). Written again whole: the model on disk stayed complete while it was scored.
    // With the exact-kernel score when this CPU's differs: what arm64, VNNI x64 and the browser compute (a bundle states it).
    const exact = summary['top1_after_exact_kernels'] as number | undefined;
    const scoredStep = withLastStepAmended(output, options.qat ? 'slimkit.qat' : 'slimkit.quantization', { scored: { top1: after, images: summary['eval_images'], data: summary['eval_data'], ...(exact !== undefined && exact !== after ? { top1_exact_kernels: exact } : {}) } });
    const rewritten = await writeMadeModel(scoredStep, options.output);
    Object.assign(summary, { size_bytes_after: rewritten.bytes, size_ratio: rewritten.bytes / fileBytes });
    // QAT that ends below the PTQ model it started from: the written model is the worse of the two.
    const ptq = (summary['qat'] as { top1_ptq?: number } | undefined)?.top1_ptq;
    if (ptq !== undefined && after < ptq) log(qatBelowPtqLine(after, ptq, summary['eval_images'] as number, options.lr));
    const overBudget = run?.maxDrop && !options.qat ? heldOutOverBudget(dropPt, run.maxDrop, summary['eval_images'] as number) : undefined;
    // A script gating on mixed_precision.met read "met" beside a 3.8 pt drop on the images it was reported on.
    const mixedJson = summary['mixed_precision'] as Record<string, unknown> | undefined;
    if (run?.maxDrop && mixedJson) mixedJson['held_out_met'] = withinBudget(dropPt, run.maxDrop.budgetPt);
    // Saturated sums here, not the choice, would be what misses the budget: the note above says so.
    if (overBudget && !scoredSaturating) log(overBudget);
    else if (overBudget) log(`note: --max-drop chose on exact int8 kernels; the drop of ${dropPt.toFixed(2)} pt on the other images is this CPU's (its int8 sums saturate)`);
  }
  if (options.report) {
    if (!run) throw usageError('--report works with --mode static');
    summary['report'] = await writeReport(file, run, summary, normalization, options);
  }
  interrupt?.stop();
  printResult(options, summary, () => humanSummary(summary));
}

/**
 * A warning when the split --max-drop chose misses the budget on the images it did not choose on: a
 * drop of a few images either way is noise at a few thousand images, and one that is not says so.
 */
/**
 * QAT below the PTQ model it started from, on the same images: a warning when the gap is more than a few
 * images, a note that the images cannot tell the two apart otherwise (a trial was told "the better model"
 * of 2 images in 200).
 */
export function qatBelowPtqLine(after: number, ptq: number, images: number, lr: number | undefined): string {
  return qatBelowStartLine(after, ptq, images, lr, { without: 'slim quantize without --qat writes the better model', lr: '--lr', epochs: '--epochs', evalMore: '--eval-limit' });
}

export function heldOutOverBudget(dropPt: number, chosen: { budgetPt: number; chosenOn: number; met: boolean }, reportedOn: number): string | undefined {
  if (withinBudget(dropPt, chosen.budgetPt)) return undefined;
  const image = 100 / reportedOn;
  return `warning: top-1 drops ${dropPt.toFixed(2)} pt on the ${reportedOn} images --max-drop did not choose on, past its ${chosen.budgetPt} (${chosen.met ? 'met' : 'missed as well'} on the ${chosen.chosenOn} it chose on; one image is ${image.toFixed(2)} pt here): evaluate on more images (--eval-limit) for a choice that holds, or allow a larger drop`;
}

function checkFlags(options: QuantizeCliOptions): void {
  const cifar = [options.calib, options.eval, options.data].some((d) => d !== undefined && isCifar10(d));
  if (options.dataDir !== undefined && !cifar) {
    throw usageError('--data-dir names the folder of CIFAR-10\'s files, but no --calib, --eval or --data here is cifar10', 'drop --data-dir (image folders are read from where they are)');
  }
  if (options.mode === 'static' && !options.calib) {
    throw usageError('static quantization needs calibration images', 'pass --calib cifar10 (with --data-dir) or --calib <image folder>, or use --mode dynamic / fp16');
  }
  if (options.mode !== 'static') {
    for (const [flag, set] of [['--calib', options.calib], ['--max-drop', options.maxDrop], ['--equalize', options.equalize], ['--report', options.report]] as const) {
      if (set !== undefined && set !== false) throw usageError(`${flag} only applies to --mode static`);
    }
  }
  folderResize(options, undefined); // refuses a --resize that no image folder here is read with
  if (!(options.percentile > 0 && options.percentile <= 100)) throw usageError(`--percentile must be in (0, 100], got ${options.percentile}`);
}

function humanSummary(s: Record<string, unknown>): string {
  const lines = [
    `${s['file']} → ${s['output']} (${s['mode']}${s['method'] ? `, ${s['method']} calibration on ${s['samples']} images${s['calibration_data'] ? ` of ${s['calibration_data']}` : ''}` : ''})`,
    `  size ${formatBytes(s['size_bytes_before'] as number)} → ${formatBytes(s['size_bytes_after'] as number)} (${(s['size_ratio'] as number).toFixed(3)}×), ${(s['seconds'] as number).toFixed(1)} s`,
  ];
  if (typeof s['top1_before'] === 'number') {
    const exact = s['top1_after_exact_kernels'] as number | undefined;
    lines.push(`  top-1 ${formatPercent(s['top1_before'])} → ${formatPercent(s['top1_after'] as number)} (${formatPointChange(-(s['top1_drop_pt'] as number))}) on ${s['eval_images']} image${s['eval_images'] === 1 ? '' : 's'} of ${s['eval_data']}${exact !== undefined ? `; on exact int8 kernels (arm64, VNNI x64, the browser) ${formatPercent(exact)}` : ''}`);
  }
  const qat = s['qat'] as { epochs: number; learnable_scales: boolean; top1_ptq?: number; seconds: number } | undefined;
  if (qat) {
    lines.push(`  QAT: ${qat.epochs} epoch(s), ${qat.learnable_scales ? 'learned' : 'calibrated'} scales, ${qat.seconds.toFixed(1)} s` +
      (qat.top1_ptq !== undefined && typeof s['top1_after'] === 'number' ? `; int8 top-1 PTQ ${formatPercent(qat.top1_ptq)} → QAT ${formatPercent(s['top1_after'])}` : ''));
  }
  const floatOps = Object.entries((s['ort_float_ops'] as Record<string, number> | undefined) ?? {});
  lines.push(`  ONNX Runtime runs ${Object.entries(s['ort_ops'] as Record<string, number>).map(([op, n]) => `${op} ×${n}`).join(', ')}`);
  const addsInConvs = s['ort_float_adds_in_convs'] as number | undefined;
  const fused = addsInConvs ? ` (${addsInConvs} of the Convs also ${addsInConvs === 1 ? 'sums a residual Add' : 'sum a residual Add'}, fused into it)` : '';
  lines.push(`  float compute left: ${floatOps.length ? floatOps.map(([op, n]) => `${op} ×${n}`).join(', ') + fused : 'none'}`);
  // Only static int8 models convert at each float op (fp16 computes in float; dynamic quantizes per op).
  const islands = s['mode'] === 'static' ? floatIslandNote(Object.entries((s['ort_float_islands'] as Record<string, number> | undefined) ?? {}), String(s['file']), String(s['output'])) : undefined;
  if (islands) lines.push(`  ${islands}`);
  const unfused = s['ort_unfused_nodes'] as { node: string; reason: string }[] | undefined;
  if (unfused?.length) lines.push(`  quantized, yet run in float by ONNX Runtime: ${unfused.length} node(s) (--json lists them all)`, ...byReason(unfused));
  const floatNodes = s['float_nodes'] as { node: string; reason: string }[] | undefined;
  if (floatNodes?.length) lines.push(`  left float: ${floatNodes.length} node(s) (--json lists them all)`, ...byReason(floatNodes));
  const report = s['report'] as { markdown: string } | undefined;
  if (report) lines.push(`  report: ${report.markdown}`);
  return lines.join('\n');
}

/** Nodes grouped by reason, a few names each: MobileNetV3's 28 activations would fill a screen otherwise. */
/**
 * Float ops between int8 ones each convert their tensor back to float and again to int8: on a small
 * model that can cost more than int8 saves (a trial's MobileNetV3-style net, HardSigmoid ×14 in float:
 * int8 1.3–2× slower than fp32, with no word from quantize). Said with the way to know. `islandOps`: the
 * float ops with a QuantizeLinear before and after them (a model's own input preprocessing is not one).
 */
export function floatIslandNote(islandOps: readonly [string, number][], file: string, output: string): string | undefined {
  const ops = islandOps.filter(([op]) => op !== 'DequantizeLinear' && op !== 'QuantizeLinear');
  const islands = ops.reduce((a, [, n]) => a + n, 0);
  if (islands === 0) return undefined;
  const which = islands === 1 ? `the float ${ops[0]![0]} between int8 ops converts` : `each of the ${islands} float ops between int8 ones (${ops.map(([op, n]) => `${op} ×${n}`).join(', ')}) converts`;
  return `note: ${which} int8 to float and back: on a small model that can cost more than int8 saves — time both: ${shellCommand(['slim', 'bench', file, output])}`;
}

function byReason(nodes: readonly { node: string; reason: string }[]): string[] {
  const groups = new Map<string, string[]>();
  for (const f of nodes) groups.set(f.reason, [...(groups.get(f.reason) ?? []), f.node]);
  return [...groups].map(([reason, names]) => `    ${names.length} × ${reason}: ${names.slice(0, 4).join(', ')}${names.length > 4 ? `, … ${names.length - 4} more` : ''}`);
}

/**
 * Why ONNX Runtime left a quantized node in float. Its QDQ fusion of Conv and MatMul takes int8
 * activations on arm64 only (QDQIsInt8Allowed): on x64 most such Convs stay float between their Q/DQ
 * pairs. Measured on a small ResNet: int8 activations fuse 2 of 5 Convs on x64 and all 5 on arm64
 * (qemu); uint8 fuses all 5 on both. Other ops have no such gate.
 */
export function unfusedReason(activationType: 'uint8' | 'int8', opType: string, arch: string = process.arch): string {
  if (activationType === 'int8' && arch === 'x64' && ['Conv', 'MatMul', 'Gemm'].includes(opType)) {
    return 'ONNX Runtime on x64 leaves most Conv and MatMul with int8 activations unfused, in float (arm64 fuses them; for an x64 target keep the default --activation-type uint8)';
  }
  return 'no fused integer kernel for this pattern in ONNX Runtime here';
}

/** A small model's weights are a small part of its file: the Q/DQ nodes (and their names) can outweigh what int8 saves. */
export function largerNote(before: number, after: number, mode: string, file: string, output: string): string | undefined {
  if (after <= before || mode !== 'static') return undefined;
  return `note: the int8 file is larger than the float one: its weights are too few for their 4× saving to pay for the QuantizeLinear/DequantizeLinear nodes around every layer (its latency may still be lower: slim bench ${file} ${output})`;
}

/**
 * The model quantize starts from: ops slimkit has no definition for stay float, their output types
 * measured with ONNX Runtime (runtime/opaque-types.ts), said in a note. QAT trains every op in the
 * engine, so it refuses them as train does.
 */
async function withUndefinedOpsFloat(loaded: RuntimeModel, file: string, options: Pick<QuantizeCliOptions, 'qat' | 'mode'>): Promise<Graph> {
  if (loaded.unknownOps.length === 0) return loaded.graph;
  const names = loaded.unknownOps.join(', ');
  if (options.qat) {
    // Input, as train's and prune's refusal of the same model (exit 1).
    throw inputError({ file, problem: `--qat trains the model in slimkit's engine, which has no definition for ${names}`, fix: 'quantize it without --qat: post-training quantization leaves those ops float' });
  }
  const { graph, nodes } = await withMeasuredOpaqueTypes(loaded.graph, file);
  inferShapes(graph, { file }); // the rest of the model is checked as loadModel checks it
  const [they, them, their] = nodes.length > 1 ? ['they stay', 'them', 'their'] : ['it stays', 'it', 'its'];
  const how = options.mode === 'static' ? `, with int8 values dequantized before ${them}` : options.mode === 'fp16' ? ', computing in float32 between Casts' : '';
  log(`note: slimkit has no definition for ${names} (${nodes.length} node${nodes.length > 1 ? 's' : ''}): ${they} ${options.mode === 'fp16' ? 'float32' : 'float'}, as exported${how} (${their} output shapes measured with ONNX Runtime)`);
  return graph;
}
