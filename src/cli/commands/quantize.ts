import { stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { Option, type Command } from 'commander';
import { inputError, usageError } from '../../errors.js';
import type { ImageSet } from '../../data/types.js';
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { encodeModel, writeFileAtomic, writeModel } from '../../onnx/io.js';
import { loadModel, validateGraph } from '../../onnx/validate.js';
import { evaluate } from '../../runtime/evaluate.js';
import { defaultThreads, openSession } from '../../runtime/ort.js';
import { formatBytes, formatPercent } from '../../report/format.js';
import {
  activationErrors,
  batchSizeFor,
  buildQuantized,
  calibratePlan,
  calibrationTargets,
  CALIBRATION_METHODS,
  convertFloat16,
  CPU_CHOICES,
  DEFAULT_STATIC,
  heldOutImages,
  imageFeeds,
  INT8_SYMMETRIC,
  ortKernels,
  layerSensitivity,
  planQuantization,
  prepareFloatGraph,
  quantizeDynamic,
  rankBySensitivity,
  reportMarkdown,
  resolveCpu,
  autoConvLayout,
  sampleImages,
  AUTO_HELD_OUT_IMAGES,
  describeChoice,
  scoresByMethod,
  selectCalibrationMethod,
  searchMixedPrecision,
  sensitivitySvg,
  tapBytesPerSample,
  UINT8_ASYMMETRIC,
  weightErrors,
  type CalibrationMethod,
  type CpuChoice,
  type LayerSensitivity,
  type MixedPrecisionResult,
  type QuantizedResult,
  type QuantizeReport,
  type StaticOptions,
} from '../../compress/quantize/index.js';
import { quantizationAwareTraining, QAT_DEFAULTS } from '../../compress/qat/index.js';
import { loadDataset, modelInputSize, normalizationFor, type DataOptions } from '../dataset.js';
import { loadTrainTest, trainingProgress } from './distill.js';
import { log, printResult, progress, type CommonOptions } from '../output.js';
import { nonNegativeInt, numberList, positiveInt, positiveNumber, withJson, withThreads } from '../options.js';

type Mode = 'static' | 'dynamic' | 'fp16' | 'fp16-weights';
const MODES: readonly Mode[] = ['static', 'dynamic', 'fp16', 'fp16-weights'];

interface QuantizeCliOptions extends CommonOptions {
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

/** Images used for the --report analyses (a prefix of the calibration sample): enough for stable SQNRs. */
const REPORT_IMAGES = 256;
const SENSITIVITY_IMAGES = 128;

export function registerQuantize(program: Command): void {
  withThreads(
    withJson(
      program
        .command('quantize')
        .description('int8 post-training quantization (QDQ, calibrated), dynamic int8 or float16 conversion')
        .argument('<model>', 'a float .onnx model')
        .requiredOption('-o, --output <file>', 'where to write the quantized model')
        .addOption(new Option('--mode <mode>', 'static: int8 weights and activations (calibrated); dynamic: int8 MatMul/Gemm weights, activations at run time; fp16: float16 model; fp16-weights: float16 storage only').choices(MODES).default('static'))
        .option('--calib <name|folder>', "calibration images: 'cifar10' (train split) or a folder of images")
        .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download to ~/.cache/slimkit)')
        .option('--samples <n>', 'calibration images, drawn at random', positiveInt('--samples'), 512)
        .option('--seed <n>', 'seed of the calibration sample', nonNegativeInt('--seed'), 0)
        .addOption(new Option('--method <method>', `how activation ranges are chosen from the calibration histograms; auto: build all four from one calibration and keep the one whose outputs match fp32 best on ${AUTO_HELD_OUT_IMAGES} held-out images`).choices([...CALIBRATION_METHODS, 'auto']).default('auto'))
        .option('--percentile <p>', 'percentile method: share of values kept inside the range, in percent', positiveNumber('--percentile'), DEFAULT_STATIC.calibration.percentile)
        .option('--per-tensor', 'one weight scale per tensor instead of per output channel')
        .addOption(new Option('--activation-type <type>', 'uint8 (asymmetric) or int8 (symmetric) activations').choices(['uint8', 'int8']).default('uint8'))
        .option('--reduce-range', '7-bit weights, for x86 CPUs with AVX2 but no VNNI')
        .addOption(new Option('--cpu <kind>', "the CPU whose ONNX Runtime int8 Conv kernels the model is laid out for (same outputs either way): amx (Intel AMX-INT8: Sapphire Rapids and later), generic (VNNI / arm64 / wasm); auto: this machine's, and on an AMX machine each Conv timed on both kernels at --threads, keeping the faster").choices(CPU_CHOICES).default(DEFAULT_STATIC.cpu))
        .option('--keep-first', 'keep the first Conv/Gemm/MatMul layer in float')
        .option('--keep-last', 'keep the last Conv/Gemm/MatMul layer in float')
        .option('--exclude <nodes>', 'comma-separated node names to keep in float (--report lists them)')
        .option('--bias-correction', 'correct the mean output shift that weight rounding causes (default)')
        .option('--no-bias-correction', 'leave biases as they are')
        .option('--equalize', 'cross-layer equalization of Conv → ReLU → Conv pairs before calibration')
        .option('--max-drop <pt>', 'keep the most sensitive layers in float until top-1 drops by at most this many points', positiveNumber('--max-drop'))
        .option('--eval <name|folder>', "evaluation images for top-1 before/after: 'cifar10' (test split) or a folder (default with --calib cifar10: CIFAR-10 test)")
        .option('--eval-limit <n>', 'evaluate on the first N images only', positiveInt('--eval-limit'))
        .option('--report [path]', 'write the SQNR / sensitivity report: PATH.md, PATH.json, PATH.svg (default: next to the output)')
        .option('--mean <r,g,b>', 'per-channel mean after scaling (default: the model metadata, else CIFAR-10)', numberList('--mean', 3))
        .option('--std <r,g,b>', 'per-channel std (default: the model metadata, else CIFAR-10)', numberList('--std', 3))
        .option('--qat', 'quantization-aware training: fine-tune the calibrated int8 model with its quantization simulated, then write it')
        .option('--data <cifar10|folder>', "--qat training data: 'cifar10', or a folder with train/ and test/ subfolders (default calibration images: its training split)")
        .option('--epochs <n>', '--qat: passes over the training data', positiveInt('--epochs'), 1)
        .option('--batch <n>', '--qat: images per step', positiveInt('--batch'), QAT_DEFAULTS.batch)
        .option('--lr <x>', `--qat: peak learning rate, cosine decay (default ${QAT_DEFAULTS.lr} for sgd, ${QAT_DEFAULTS.adamwLr} for adamw)`, positiveNumber('--lr'))
        .addOption(new Option('--optimizer <name>', '--qat: update rule').choices(['sgd', 'adamw']).default('sgd'))
        .option('--bn-epochs <n>', '--qat: train the first N epochs with the model\'s BatchNormalization live (batch statistics), then fold and freeze it', nonNegativeInt('--bn-epochs'))
        .option('--lsq', '--qat: learn the quantization scales too (LSQ) instead of keeping the calibrated ones')
        .option('--no-distill', '--qat: train on the labels alone (default: also distill from the float model, alpha 0.5, T 4: measured +0.25 pt over plain QAT)')
        .addOption(new Option('--device <device>', '--qat: where to train').choices(['cpu', 'cuda']).default('cpu'))
        .option('--train-limit <n>', '--qat: train on the first N training images only', positiveInt('--train-limit'))
        .option('--test-limit <n>', '--qat: evaluate each epoch on the first N test images only', positiveInt('--test-limit'))
        .option('--checkpoint-dir <dir>', '--qat: write <dir>/last.ckpt atomically after every epoch')
        .option('--resume [file]', '--qat: continue from <checkpoint-dir>/last.ckpt (or the given checkpoint)')
        .option('--log <file.jsonl>', '--qat: append one JSON line per epoch'),
    ),
  )
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
      if (command.getOptionValueSource('percentile') === 'cli' && options.method !== 'percentile' && options.method !== 'auto') {
        throw usageError(`--percentile applies to --method percentile, not ${options.method}`);
      }
      await runQuantize(file, { ...options, biasCorrection: options.biasCorrection ?? DEFAULT_STATIC.biasCorrection });
    });
}

interface EvalData {
  set: ImageSet;
  limit?: number;
}

async function runQuantize(file: string, options: QuantizeCliOptions): Promise<void> {
  checkQatFlags(options);
  checkFlags(options);
  const start = performance.now();
  const { graph, fileBytes } = await loadModel(file);
  const quantOps = graph.nodes.filter((n) => ['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger'].includes(n.opType));
  if (quantOps.length > 0) {
    throw inputError({ file, where: `node '${quantOps[0]!.name}' (${quantOps[0]!.opType})`, problem: 'the model is already quantized', fix: 'quantize the float model it was made from' });
  }
  const data: DataOptions = { ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(options.mean ? { mean: options.mean } : {}), ...(options.std ? { std: options.std } : {}) };
  const normalization = normalizationFor(graph, data);
  const threads = options.threads;
  // Loading the evaluation set is not part of quantizing: its time is left out of `seconds`.
  const evalLoadStart = performance.now();
  const evalData = await loadEvalData(options, graph, file);
  const evalLoadSeconds = (performance.now() - evalLoadStart) / 1000;

  let output: Graph;
  const extra: Record<string, unknown> = {};
  let result: QuantizedResult | undefined;
  let mixed: MixedPrecisionResult | undefined;
  let calibSet: ImageSet | undefined;
  let staticOptions: StaticOptions | undefined;
  const evalCache: { before?: number; after?: number } = {};
  let sensitivity: LayerSensitivity[] | undefined;
  let prepared: ReturnType<typeof prepareFloatGraph> | undefined;
  let collector: Awaited<ReturnType<typeof calibratePlan>> | undefined;

  if (options.mode === 'static') {
    staticOptions = {
      ...DEFAULT_STATIC,
      activations: options.activationType === 'int8' ? INT8_SYMMETRIC : UINT8_ASYMMETRIC,
      perChannel: !options.perTensor,
      reduceRange: options.reduceRange ?? false,
      cpu: options.cpu,
      exclude: splitList(options.exclude),
      keepFirst: options.keepFirst ?? false,
      keepLast: options.keepLast ?? false,
      biasCorrection: options.biasCorrection,
      equalize: options.equalize ?? false,
      calibration: { ...DEFAULT_STATIC.calibration, method: options.method === 'auto' ? DEFAULT_STATIC.calibration.method : options.method, percentile: options.percentile },
    };
    // An image folder is read only up to --samples images (round-robin over classes), so memory does
    // not grow with the folder; CIFAR-10 train (150 MB) is sampled at random.
    const folder = !isCifar(options.calib!);
    const auto = options.method === 'auto';
    const fullSet = await loadDataset({ ...data, data: options.calib!, split: 'train', ...(folder ? { limit: options.samples + (auto ? AUTO_HELD_OUT_IMAGES : 0) } : {}) }, modelInputSize(graph));
    checkImageSize(graph, fullSet, file, '--calib');
    calibSet = sampleImages(fullSet, options.samples, options.seed);
    prepared = prepareFloatGraph(graph, staticOptions);
    const plan = planQuantization(prepared.graph, prepared.facts, staticOptions);
    const inputName = dataInputs(prepared.graph)[0]!.name;
    const batchSize = batchSizeFor(tapBytesPerSample(calibrationTargets(plan), prepared.facts));
    const feeds = imageFeeds(calibSet, { inputName, normalization, batchSize });
    const calibStart = performance.now();
    const bar = progress('calibrate', calibSet.labels.length, 'img');
    try {
      collector = await calibratePlan(prepared, plan, feeds, staticOptions.calibration, {
        ...(threads ? { threads } : {}),
        channelMeans: staticOptions.biasCorrection,
        onProgress: (n) => bar.update(n),
      });
    } finally {
      bar.stop();
    }
    extra['calibration_seconds'] = (performance.now() - calibStart) / 1000;
    extra['calibration_images'] = calibSet.labels.length;
    if (auto && fullSet.labels.length > calibSet.labels.length) {
      const heldOut = heldOutImages(fullSet, options.samples, AUTO_HELD_OUT_IMAGES, options.seed);
      const choice = await selectCalibrationMethod(prepared, collector, staticOptions, imageFeeds(heldOut, { inputName, normalization, batchSize: 64 }), threads ? { threads } : {});
      staticOptions = { ...staticOptions, calibration: { ...staticOptions.calibration, method: choice.method } };
      result = choice.result;
      extra['method_scores'] = { held_out_images: heldOut.labels.length, output_sqnr_db: scoresByMethod(choice) };
      log(describeChoice(choice, heldOut.labels.length));
    } else {
      if (auto) log(`calibration method: ${staticOptions.calibration.method} (no images left over for --method auto to compare methods on)`);
      result = buildQuantized(prepared, collector, staticOptions);
    }
    output = result.graph;

    if (options.maxDrop !== undefined) {
      if (!evalData) throw usageError('--max-drop needs evaluation data', "pass --eval cifar10 or --eval <folder> (with --calib cifar10 the CIFAR-10 test split is used)");
      const baseline = await top1(graph, evalData, normalization, threads, 'eval float');
      evalCache.before = baseline;
      const opts = staticOptions;
      const p = prepared;
      const c = collector;
      const set = calibSet;
      const rank = async (): Promise<string[]> => {
        sensitivity = await sensitivityFor(p, c, opts, set, normalization, options, threads);
        return rankBySensitivity(sensitivity);
      };
      const first = await top1(output, evalData, normalization, threads, 'eval int8');
      if ((baseline - first) * 100 > options.maxDrop) {
        log(`top-1 drop ${((baseline - first) * 100).toFixed(2)} pt > --max-drop ${options.maxDrop}: ranking layers by sensitivity`);
        const ranking = await rank();
        mixed = await searchMixedPrecision({
          ranking,
          baseline,
          maxDropPt: options.maxDrop,
          build: (floatLayers) => buildQuantized(p, c, opts, { exclude: [...opts.exclude, ...floatLayers] }).graph,
          evaluate: (g) => top1(g, evalData, normalization, threads, 'eval mixed'),
          onStep: (s) => log(`  ${s.floatLayers} layer(s) float: top-1 ${formatPercent(s.top1)} (drop ${s.dropPt.toFixed(2)} pt)`),
          initial: { graph: output, top1: first },
        });
        output = mixed.graph;
        result = buildQuantized(p, c, opts, { exclude: [...opts.exclude, ...mixed.floatLayers] });
        if (!mixed.met) log(`warning: no split met --max-drop ${options.maxDrop}; kept the most accurate one (${mixed.floatLayers.length} float layers)`);
        extra['mixed_precision'] = { float_layers: mixed.floatLayers, met: mixed.met, steps: mixed.steps };
        evalCache.after = mixed.top1;
      } else {
        extra['mixed_precision'] = { float_layers: [], met: true, steps: [{ floatLayers: 0, top1: first, dropPt: (baseline - first) * 100 }] };
        evalCache.after = first;
      }
    }
    // Each Conv on the faster of ORT's two int8 kernels at the thread count it will run with (tune-layout.ts).
    const tuned = await autoConvLayout(output, staticOptions.cpu, threads ?? defaultThreads());
    if (tuned) {
      output = tuned.graph;
      result = { ...result, graph: tuned.graph };
      extra['conv_layout'] = { ...tuned.summary, timings_us: tuned.timings.map((t) => ({ conv: t.conv, amx: t.amxUs, convsym: t.genericUs })) };
      log(`conv layout for ${tuned.threads} thread(s): ${tuned.summary.amx_convs} Conv(s) on the AMX GEMM path, ${tuned.summary.convsym_convs} on ConvSym (measured; --cpu amx|generic fixes one)`);
    }
    extra['quantized_nodes'] = result.plan.units.size;
    extra['folded_activations'] = result.plan.folded.size;
    extra['cpu'] = resolveCpu(staticOptions.cpu);
    extra['float_nodes'] = result.plan.float;
    if (result.params.warnings.length > 0) {
      extra['warnings'] = result.params.warnings;
      for (const w of result.params.warnings) log(`warning: ${w}`);
    }
    if (prepared.equalized) extra['equalized_pairs'] = prepared.equalized.pairs.length;
  } else if (options.mode === 'dynamic') {
    const dyn = quantizeDynamic(prepareFloatGraph(graph, { equalize: false }).graph, {
      perChannel: !options.perTensor,
      reduceRange: options.reduceRange ?? false,
      exclude: splitList(options.exclude),
    });
    if (dyn.layers.length === 0) log('warning: no MatMul/Gemm layer with constant weights: nothing was quantized (for CNNs use --mode static)');
    extra['quantized_nodes'] = dyn.layers.length;
    output = dyn.graph;
  } else {
    const fp16 = convertFloat16(prepareFloatGraph(graph, { equalize: false }).graph, options.mode === 'fp16' ? 'full' : 'weights');
    if (fp16.clamped > 0) log(`warning: ${fp16.clamped} weight value(s) beyond ±65504 were clamped to the float16 range`);
    extra['converted_tensors'] = fp16.converted;
    output = fp16.graph;
  }

  if (options.qat && result) {
    const qat = await qatFineTune(file, graph, result, options, normalization, evalData);
    output = qat.graph;
    extra['qat'] = qat.summary;
    // The reported "after" is the QAT model's; PTQ's top-1 stays in the qat section.
    delete evalCache.after;
  }

  validateGraph(output, { file: options.output });
  const { bytes } = await writeModel(output, options.output);
  const seconds = (performance.now() - start) / 1000 - evalLoadSeconds;
  log(`wrote ${options.output}: ${formatBytes(fileBytes)} → ${formatBytes(bytes)} (${(bytes / fileBytes).toFixed(3)}×) in ${seconds.toFixed(1)} s`);

  // What ORT makes of it: fused integer kernels, and any float compute left (listed, never hidden).
  const kernels = await ortKernels(options.output, threads ? { threads } : {});
  extra['ort_ops'] = kernels.ops;
  extra['ort_float_ops'] = kernels.floatOps;
  const summary: Record<string, unknown> = {
    file,
    output: options.output,
    mode: options.mode,
    ...(options.mode === 'static' ? { method: staticOptions?.calibration.method ?? options.method, samples: calibSet?.labels.length } : {}),
    size_bytes_before: fileBytes,
    size_bytes_after: bytes,
    size_ratio: bytes / fileBytes,
    seconds,
    ...extra,
  };
  if (evalData) {
    const before = evalCache.before ?? (await top1(graph, evalData, normalization, threads, 'eval float'));
    const after = evalCache.after ?? (await top1(output, evalData, normalization, threads, 'eval quantized'));
    Object.assign(summary, { top1_before: before, top1_after: after, top1_drop_pt: (before - after) * 100, eval_images: Math.min(evalData.limit ?? Infinity, evalData.set.labels.length), eval_data: evalData.set.name });
  }
  if (options.report) {
    if (!result || !staticOptions || !calibSet || !prepared || !collector) throw usageError('--report works with --mode static');
    const base = typeof options.report === 'string' ? options.report.replace(/\.(md|json|svg)$/, '') : join(dirname(options.output), `${basename(options.output).replace(/\.onnx$/, '')}.report`);
    summary['report'] = await writeReport(base, {
      file,
      options,
      staticOptions,
      result,
      summary,
      calibSet,
      normalization,
      inputName: dataInputs(result.float)[0]!.name,
      sensitivity: sensitivity ?? (await sensitivityFor(prepared, collector, staticOptions, calibSet, normalization, options, threads)),
      ...(mixed ? { mixed } : {}),
    });
  }
  printResult(options, summary, () => humanSummary(summary));
}

function checkFlags(options: QuantizeCliOptions): void {
  if (options.mode === 'static' && !options.calib) {
    throw usageError('static quantization needs calibration images', 'pass --calib cifar10 (with --data-dir) or --calib <image folder>, or use --mode dynamic / fp16');
  }
  if (options.mode !== 'static') {
    for (const [flag, set] of [['--calib', options.calib], ['--max-drop', options.maxDrop], ['--equalize', options.equalize], ['--report', options.report]] as const) {
      if (set !== undefined && set !== false) throw usageError(`${flag} only applies to --mode static`);
    }
  }
  if (!(options.percentile > 0 && options.percentile <= 100)) throw usageError(`--percentile must be in (0, 100], got ${options.percentile}`);
}

/** CIFAR-10 is not resized: a model for another input size needs an image folder (which is). */
function checkImageSize(graph: Graph, set: ImageSet, file: string, flag: string): void {
  const size = modelInputSize(graph);
  const [c, h, w] = set.imageShape;
  const channels = dataInputs(graph)[0]?.shape?.[1];
  if ((size && (size[0] !== h || size[1] !== w)) || (typeof channels === 'number' && channels !== c)) {
    throw usageError(
      `${file} takes ${channels ?? '?'}×${size?.join('×') ?? '?'} images but ${flag} ${set.name} has ${c}×${h}×${w} images`,
      `pass ${flag} <image folder> (images are resized to the model's input), or use a model for ${h}×${w} input`,
    );
  }
}

function isCifar(name: string): boolean {
  return ['cifar10', 'cifar-10'].includes(name.toLowerCase());
}

function splitList(list: string | undefined): string[] {
  return list ? list.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

async function loadEvalData(options: QuantizeCliOptions, graph: Graph, file: string): Promise<EvalData | undefined> {
  let name = options.eval;
  const wanted = name !== undefined || options.evalLimit !== undefined || options.maxDrop !== undefined;
  if (!wanted) return undefined;
  if (name === undefined) {
    if (!isCifar(options.calib ?? '')) {
      throw usageError('--eval-limit / --max-drop need evaluation images', 'pass --eval cifar10 or --eval <folder of images by class>');
    }
    name = 'cifar10';
  }
  const folder = !isCifar(name);
  if (folder && !(await stat(name).catch(() => undefined))?.isDirectory()) {
    throw usageError(`--eval '${name}' is neither 'cifar10' nor a folder`, 'pass --eval cifar10 or a folder with one subfolder of images per class');
  }
  const set = await loadDataset(
    { data: name, split: 'test', ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(options.evalLimit !== undefined ? { limit: options.evalLimit } : {}) },
    modelInputSize(graph),
  );
  checkImageSize(graph, set, file, '--eval');
  return { set, ...(options.evalLimit !== undefined ? { limit: options.evalLimit } : {}) };
}

async function top1(graph: Graph, data: EvalData, normalization: ReturnType<typeof normalizationFor>, threads: number | undefined, label: string): Promise<number> {
  const model = await openSession(encodeModel(graph).model, { ...(threads ? { threads } : {}), label });
  const total = Math.min(data.limit ?? Infinity, data.set.labels.length);
  const bar = progress(label, total, 'img');
  try {
    const r = await evaluate(model, data.set, { normalization, ...(data.limit !== undefined ? { limit: data.limit } : {}), onProgress: (d) => bar.update(d) });
    return r.top1;
  } finally {
    bar.stop();
    await model.close();
  }
}

async function sensitivityFor(
  prepared: ReturnType<typeof prepareFloatGraph>,
  collector: Awaited<ReturnType<typeof calibratePlan>>,
  staticOptions: StaticOptions,
  calibSet: ImageSet,
  normalization: ReturnType<typeof normalizationFor>,
  options: QuantizeCliOptions,
  threads: number | undefined,
): Promise<LayerSensitivity[]> {
  const inputName = dataInputs(prepared.graph)[0]!.name;
  const feeds = imageFeeds(sampleImages(calibSet, SENSITIVITY_IMAGES, options.seed), { inputName, normalization, batchSize: 32 });
  const bar = progress('sensitivity', 100, '%');
  try {
    return await layerSensitivity(prepared, collector, staticOptions, feeds, { ...(threads ? { threads } : {}), onProgress: (d, t) => bar.update(Math.round((100 * d) / t)) });
  } finally {
    bar.stop();
  }
}

interface ReportInputs {
  file: string;
  options: QuantizeCliOptions;
  staticOptions: StaticOptions;
  result: QuantizedResult;
  summary: Record<string, unknown>;
  calibSet: ImageSet;
  normalization: ReturnType<typeof normalizationFor>;
  inputName: string;
  sensitivity: LayerSensitivity[];
  mixed?: MixedPrecisionResult;
}

async function writeReport(base: string, r: ReportInputs): Promise<{ markdown: string; json: string; svg: string }> {
  const images = sampleImages(r.calibSet, REPORT_IMAGES, r.options.seed);
  const bar = progress('report', images.labels.length, 'img');
  let activations;
  try {
    activations = await activationErrors(r.result, imageFeeds(images, { inputName: r.inputName, normalization: r.normalization, batchSize: 32 }), {
      ...(r.options.threads ? { threads: r.options.threads } : {}),
      onProgress: (n) => bar.update(n),
    });
  } finally {
    bar.stop();
  }
  const report: QuantizeReport = {
    model: r.file,
    output: r.options.output,
    settings: { method: r.staticOptions.calibration.method, ...(r.staticOptions.calibration.method === 'percentile' ? { percentile: r.staticOptions.calibration.percentile } : {}), activations: r.staticOptions.activations, per_channel: r.staticOptions.perChannel, reduce_range: r.staticOptions.reduceRange, bias_correction: r.staticOptions.biasCorrection, equalize: r.staticOptions.equalize, samples: r.calibSet.labels.length },
    size_bytes_before: r.summary['size_bytes_before'] as number,
    size_bytes_after: r.summary['size_bytes_after'] as number,
    ...(typeof r.summary['top1_before'] === 'number' ? { top1_before: r.summary['top1_before'] } : {}),
    ...(typeof r.summary['top1_after'] === 'number' ? { top1_after: r.summary['top1_after'] } : {}),
    activations: activations.map((a) => {
      const p = r.result.params.tensors.get(a.tensor);
      return p?.kind === 'activation' ? { ...a, min: p.range.min, max: p.range.max, scale: p.scale, zero_point: p.zeroPoint } : a;
    }),
    weights: weightErrors(r.result),
    sensitivity: r.sensitivity,
    float_nodes: r.result.plan.float,
    ...(r.mixed ? { mixed_precision: { steps: r.mixed.steps, float_layers: r.mixed.floatLayers } } : {}),
  };
  const paths = { markdown: `${base}.md`, json: `${base}.json`, svg: `${base}.svg` };
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  await writeFileAtomic(paths.json, text(`${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`));
  await writeFileAtomic(paths.svg, text(sensitivitySvg(r.sensitivity)));
  await writeFileAtomic(paths.markdown, text(reportMarkdown(report, basename(paths.svg))));
  log(`report: ${paths.markdown}, ${paths.json}, ${paths.svg}`);
  return paths;
}

function humanSummary(s: Record<string, unknown>): string {
  const lines = [
    `${s['file']} → ${s['output']} (${s['mode']}${s['method'] ? `, ${s['method']} calibration on ${s['samples']} images` : ''})`,
    `  size ${formatBytes(s['size_bytes_before'] as number)} → ${formatBytes(s['size_bytes_after'] as number)} (${(s['size_ratio'] as number).toFixed(3)}×), ${(s['seconds'] as number).toFixed(1)} s`,
  ];
  if (typeof s['top1_before'] === 'number') {
    lines.push(`  top-1 ${formatPercent(s['top1_before'])} → ${formatPercent(s['top1_after'] as number)} (${(-(s['top1_drop_pt'] as number)).toFixed(2)} pt) on ${s['eval_images']} images of ${s['eval_data']}`);
  }
  const qat = s['qat'] as { epochs: number; learnable_scales: boolean; top1_ptq?: number; seconds: number } | undefined;
  if (qat) {
    lines.push(`  QAT: ${qat.epochs} epoch(s), ${qat.learnable_scales ? 'learned' : 'calibrated'} scales, ${qat.seconds.toFixed(1)} s` +
      (qat.top1_ptq !== undefined && typeof s['top1_after'] === 'number' ? `; int8 top-1 PTQ ${formatPercent(qat.top1_ptq)} → QAT ${formatPercent(s['top1_after'])}` : ''));
  }
  const floatOps = Object.entries((s['ort_float_ops'] as Record<string, number> | undefined) ?? {});
  lines.push(`  ONNX Runtime runs ${Object.entries(s['ort_ops'] as Record<string, number>).map(([op, n]) => `${op} ×${n}`).join(', ')}`);
  lines.push(`  float compute left: ${floatOps.length ? floatOps.map(([op, n]) => `${op} ×${n}`).join(', ') : 'none'}`);
  const floatNodes = s['float_nodes'] as { node: string; reason: string }[] | undefined;
  if (floatNodes?.length) lines.push(`  left float: ${floatNodes.map((f) => `${f.node} (${f.reason})`).join(', ')}`);
  const report = s['report'] as { markdown: string } | undefined;
  if (report) lines.push(`  report: ${report.markdown}`);
  return lines.join('\n');
}

/** --qat needs training data; its training split doubles as the calibration set unless --calib says otherwise. */
function checkQatFlags(options: QuantizeCliOptions): void {
  const qatOnly = ['data', 'bnEpochs', 'lsq', 'trainLimit', 'testLimit', 'checkpointDir', 'resume', 'log', 'lr'] as const;
  if (!options.qat) {
    const given = qatOnly.find((k) => options[k] !== undefined && options[k] !== false);
    if (!given && options.distill === false) throw usageError('--no-distill only applies with --qat');
    if (given) throw usageError(`--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only applies with --qat`);
    return;
  }
  if (options.mode !== 'static') throw usageError('--qat fine-tunes a static int8 model', 'drop --mode, or use --mode static');
  if (options.report) throw usageError('--report analyses post-training quantization', 'run slim quantize --report without --qat for the SQNR / sensitivity report');
  if (options.bnEpochs && options.equalize) throw usageError('--bn-epochs puts the model\'s BatchNormalization back behind the quantized Convs, which --equalize has rescaled', 'drop --equalize, or --bn-epochs');
  if (!options.data) throw usageError('--qat needs training images', 'pass --data cifar10 (with --data-dir) or --data <folder with train/ and test/>');
  options.calib ??= isCifar(options.data) ? options.data : join(options.data, 'train');
}

interface QatStep {
  graph: Graph;
  summary: Record<string, unknown>;
}

/** Quantization-aware training from the PTQ result (same placement and calibration), then export. */
async function qatFineTune(
  file: string,
  floatGraph: Graph,
  ptq: QuantizedResult,
  options: QuantizeCliOptions,
  normalization: ReturnType<typeof normalizationFor>,
  evalData: EvalData | undefined,
): Promise<QatStep> {
  const data = await loadTrainTest(options.data!, { ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...(modelInputSize(floatGraph) ? { size: modelInputSize(floatGraph)! } : {}) });
  checkImageSize(floatGraph, data.train, file, '--data');
  // PTQ's accuracy, for the comparison the user is paying the training for.
  const ptqTop1 = evalData ? await top1(ptq.graph, evalData, normalization, options.threads, 'eval int8 (PTQ)') : undefined;
  const bar = trainingProgress('qat');
  const r = await quantizationAwareTraining({
    graph: ptq.graph,
    float: ptq.float,
    data,
    epochs: options.epochs,
    batch: options.batch,
    optimizer: options.optimizer,
    learnableScales: options.lsq ?? false,
    ...(options.bnEpochs ? { bnEpochs: options.bnEpochs, unfolded: floatGraph } : {}),
    device: options.device,
    seed: options.seed,
    onProgress: bar.onProgress,
    file,
    ...(options.distill ? { teacher: { graph: ptq.float } } : {}),
    ...(options.lr !== undefined ? { lr: options.lr } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.trainLimit !== undefined ? { trainLimit: options.trainLimit } : {}),
    ...(options.testLimit !== undefined ? { testLimit: options.testLimit } : {}),
    ...(options.checkpointDir ? { checkpointDir: options.checkpointDir } : {}),
    ...(options.resume !== undefined ? { resume: options.resume } : {}),
    ...(options.log ? { log: options.log } : {}),
  }).finally(() => bar.stop());
  for (const w of r.warnings) log(`warning: ${w}`);
  log(`qat: ${r.history.length} epoch(s) in ${r.seconds.toFixed(1)} s, engine top-1 ${formatPercent(r.testAccuracy)} (fake-quantized)`);
  return {
    graph: r.graph,
    summary: {
      epochs: r.history.length,
      steps: r.steps,
      learnable_scales: options.lsq ?? false,
      distilled: options.distill ?? false,
      engine_top1: r.testAccuracy,
      ...(ptqTop1 !== undefined ? { top1_ptq: ptqTop1 } : {}),
      seconds: r.seconds,
      gpu_seconds: r.gpuSeconds,
      estimated_cost: r.estimatedCost,
      ...(r.warnings.length ? { warnings: r.warnings } : {}),
      history: r.history,
    },
  };
}
