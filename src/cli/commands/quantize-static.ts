import { mixedStepJson, nodeReasonJson, sensitivityJson } from '../../report/json-records.js';
import { basename, dirname, join } from 'node:path';
import { usageError } from '../../errors.js';
import type { Normalization } from '../../data/types.js';
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { requireOneInput } from '../../onnx/image-input.js';
import { writeFileAtomic } from '../../onnx/io.js';
import { defaultThreads } from '../../runtime/ort.js';
import { formatPercent } from '../../report/format.js';
import {
  activationErrors,
  AUTO_HELD_OUT_IMAGES,
  autoConvLayout,
  buildQuantized,
  calibrateImages,
  describeChoice,
  imageFeeds,
  layerSensitivity,
  meetTopOneBudget,
  quantizedBySensitivity,
  reportMarkdown,
  resolveCpu,
  sampleImages,
  scoresByMethod,
  SENSITIVITY_IMAGES,
  sensitivitySvg,
  weightErrors,
  type CalibratedModel,
  type LayerSensitivity,
  type MixedPrecisionResult,
  type QuantizedResult,
  type QuantizeReport,
  type StaticOptions,
} from '../../compress/quantize/index.js';
import { forExactScoring } from '../../compress/quantize/unsigned-layout.js';
import { checkImageSize, loadDataset, modelInputSize, type DataOptions, modelChannels } from '../../data/model-data.js';
import { log, progress } from '../../util/terminal.js';
import { interleavedHalf } from '../../data/stream.js';
import { staticOptionsOf } from '../../toolkit.js';
import { isCifar10 } from '../../data/cifar10.js';
import { top1, type EvalData } from './quantize-eval.js';
import type { QuantizeCliOptions } from './quantize.js';
import { int8KernelsSaturate } from '../../util/cpu-flags.js';

/** Images used for the --report analyses (a prefix of the calibration sample): enough for stable SQNRs. */
const REPORT_IMAGES = 256;

/** Everything a static (calibrated int8) run produced: what is written, and what --report and --qat reuse. */
export interface StaticRun {
  /** The model to write: mixed precision and the Conv kernel layout applied. */
  output: Graph;
  /** What `output` was built from (mixed precision and the Conv layout applied). */
  result: QuantizedResult;
  /** The calibration: its options carry the range method --method auto chose. */
  calibrated: CalibratedModel;
  mixed?: MixedPrecisionResult;
  sensitivity?: LayerSensitivity[];
  /** --max-drop's budget and the images it chose on; top-1 is then reported on `reportOn`. */
  maxDrop?: { budgetPt: number; chosenOn: number; met: boolean };
  /** The evaluation images top-1 is reported on, when not all of them (--max-drop chose on the others). */
  reportOn?: EvalData;
  /** Fields for the --json summary. */
  extra: Record<string, unknown>;
}

interface StaticContext {
  file: string;
  data: DataOptions;
  normalization: Normalization;
  evalData: EvalData | undefined;
}

function staticOptionsFrom(options: QuantizeCliOptions): StaticOptions {
  return staticOptionsOf({
    method: options.method,
    percentile: options.percentile,
    activations: options.activationType,
    perChannel: !options.perTensor,
    reduceRange: options.reduceRange ?? false,
    cpu: options.cpu,
    exclude: splitList(options.exclude),
    keepFirst: options.keepFirst ?? false,
    keepLast: options.keepLast ?? false,
    biasCorrection: options.biasCorrection,
    equalize: options.equalize ?? false,
  });
}

export function splitList(list: string | undefined): string[] {
  return list ? list.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

/** Fewer calibration images than this, where --samples asked for more, is said. */
const FEW_CALIBRATION_IMAGES = 64;

/**
 * A calibration set that ran out far below --samples (a folder of a few photos): ranges measured on so
 * few images miss what others reach, and nothing else would say so.
 */
export function fewCalibrationImagesNote(images: number, samples: number, calib: string): string | undefined {
  if (images >= Math.min(samples, FEW_CALIBRATION_IMAGES)) return undefined;
  return `note: calibrated on ${images} image${images === 1 ? '' : 's'} of ${calib}: activation ranges measured on so few miss what other images reach, and the int8 model clips them — calibrate on a few hundred images like the ones it will see (--samples ${samples} takes up to that many)`;
}

/** Calibrate, choose the range method (--method auto), keep layers float for --max-drop, lay Convs out for the CPU. */
export async function quantizeStatic(graph: Graph, options: QuantizeCliOptions, ctx: StaticContext): Promise<StaticRun> {
  requireOneInput(dataInputs(graph), ctx.file, 'calibration');
  const { normalization, evalData } = ctx;
  if (options.maxDrop !== undefined && evalData) checkMaxDropImages(evalData, options.maxDrop);
  const threads = options.threads;
  const extra: Record<string, unknown> = {};
  const requested = staticOptionsFrom(options);
  // An image folder is read only up to --samples images (round-robin over classes, each class's drawn
  // with --seed), so memory does not grow with the folder; CIFAR-10 train (150 MB) is sampled at random.
  const folder = !isCifar10(options.calib!);
  const auto = options.method === 'auto';
  const fullSet = await loadDataset({ ...ctx.data, data: options.calib!, flag: '--calib', split: 'train', splitOptional: true, unlabelled: true, ...(folder ? { limit: options.samples + (auto ? AUTO_HELD_OUT_IMAGES : 0), sampleSeed: options.seed } : {}) }, modelInputSize(graph), modelChannels(graph));
  checkImageSize(graph, fullSet, ctx.file, '--calib');
  const bar = progress('calibrate', Math.min(options.samples, fullSet.labels.length), 'img');
  const calibrated = await calibrateImages(graph, fullSet, requested, {
    normalization,
    samples: options.samples,
    seed: options.seed,
    auto,
    ...(threads ? { threads } : {}),
    onProgress: (n) => bar.update(n),
  }).finally(() => bar.stop());
  const { prepared, result, choice, heldOut, calibSet, options: staticOptions } = calibrated;
  extra['calibration_seconds'] = calibrated.calibrationSeconds;
  extra['calibration_images'] = calibSet.labels.length;
  const few = fewCalibrationImagesNote(calibSet.labels.length, options.samples, options.calib!);
  if (few) log(few);
  // Which split: a folder's train/ when it has one — the test images never calibrate.
  extra['calibration_data'] = fullSet.name;
  if (choice && heldOut) {
    // Scored on exact int8 kernels where this CPU's sums saturate (forExactScoring): said, not left to guess.
    extra['method_scores'] = { held_out_images: heldOut.labels.length, output_sqnr_db: scoresByMethod(choice), ...(int8KernelsSaturate() ? { on_exact_kernels: true } : {}) };
    log(describeChoice(choice, heldOut.labels.length));
  } else if (auto) {
    const n = fullSet.labels.length;
    // auto compares on up to AUTO_HELD_OUT_IMAGES images: from a large set, leaving those is enough.
    const leave = n >= 2 * AUTO_HELD_OUT_IMAGES ? ` — pass --samples ${n - AUTO_HELD_OUT_IMAGES} to leave ${AUTO_HELD_OUT_IMAGES} for it` : n > 1 ? ` — pass --samples ${Math.floor(n / 2)} to keep half for it` : '';
    log(`calibration method: ${staticOptions.calibration.method} (all ${n} images went to calibration, none were left over for --method auto to compare methods on${leave})`);
  }
  const run: StaticRun = { output: result.graph, result, calibrated, extra };
  if (options.maxDrop !== undefined) run.reportOn = await keepSensitiveLayersFloat(graph, run, options, normalization, evalData);

  // Each Conv on the faster of ORT's two int8 kernels at the thread count it will run with (tune-layout.ts).
  const tuned = await autoConvLayout(run.output, staticOptions.cpu, threads ?? defaultThreads());
  if (tuned) {
    run.output = tuned.graph;
    run.result = { ...run.result, graph: tuned.graph };
    extra['conv_layout'] = { ...tuned.summary, timings_us: tuned.timings.map((t) => ({ conv: t.conv, amx: t.amxUs, convsym: t.genericUs })) };
    log(`conv layout for ${tuned.threads} thread(s): ${tuned.summary.amx_convs} Conv(s) on the AMX GEMM path, ${tuned.summary.convsym_convs} on ConvSym (measured; --cpu amx|generic fixes one)`);
  }
  extra['quantized_nodes'] = run.result.plan.units.size;
  extra['folded_activations'] = run.result.plan.folded.size;
  extra['cpu'] = resolveCpu(staticOptions.cpu);
  extra['float_nodes'] = run.result.plan.float.map(nodeReasonJson);
  if (run.result.params.warnings.length > 0) {
    extra['warnings'] = run.result.params.warnings;
    for (const w of run.result.params.warnings) log(`warning: ${w}`);
  }
  if (prepared.equalized) extra['equalized_pairs'] = prepared.equalized.pairs.length;
  return run;
}

/**
 * Before any work: --max-drop needs an image on each side of its split, and a budget finer than one of
 * the images it chooses on means that no image may change — said, as a note.
 */
function checkMaxDropImages(evalData: EvalData, maxDrop: number): void {
  const images = Math.min(evalData.limit ?? Infinity, evalData.source.count);
  if (images < 2) throw usageError(`--max-drop chooses on half the evaluation images and reports top-1 on the other half, and ${evalData.source.name} has ${images}`, 'evaluate on more images (a larger --eval-limit, or another --eval)');
  const image = 100 / Math.ceil(images / 2);
  if (image > maxDrop) log(`note: one of the ${Math.ceil(images / 2)} images --max-drop chooses on is ${image.toFixed(2)} pt, more than --max-drop ${maxDrop}: it allows no net loss of an image (a larger --eval-limit makes the budget finer)`);
}

/**
 * --max-drop: if int8 costs more top-1 than allowed, keep the most sensitive layers float until it does
 * not. The choice is made on every other evaluation image and the top-1 reported on the others: scored
 * on the images that chose it, a split is flattered by the choice (of several splits tried, the first
 * whose drop happened to come out within the budget). Returns the images left for the report.
 */
async function keepSensitiveLayersFloat(graph: Graph, run: StaticRun, options: QuantizeCliOptions, normalization: Normalization, evalData: EvalData | undefined): Promise<EvalData> {
  const maxDrop = options.maxDrop!;
  if (!evalData) throw usageError('--max-drop needs evaluation data', "pass --eval cifar10 or --eval <folder> (with --calib cifar10 the CIFAR-10 test split is used)");
  const threads = options.threads;
  if (evalData.streamed) {
    log(`note: ${evalData.source.name}'s ${evalData.source.count} evaluation images are too many to hold decoded: each of --max-drop's scorings reads them again (--eval-limit N keeps them in memory)`);
  }
  const half = (part: 0 | 1): EvalData => ({ source: interleavedHalf(evalData.source, part, evalData.limit), streamed: evalData.streamed });
  const [choose, report] = [half(0), half(1)];
  log(`--max-drop: choosing on ${choose.source.count} of the ${choose.source.count + report.source.count} evaluation images (every other one); top-1 is reported on the other ${report.source.count}`);
  const { prepared, collector, options: opts } = run.calibrated;
  const int8 = run.output;
  const userPlan = run.result.plan;
  const mixed = await meetTopOneBudget(graph, int8, {
    maxDropPt: maxDrop,
    build: (floatLayers) => buildQuantized(prepared, collector, opts, { exclude: opts.exclude, keptBySensitivity: floatLayers }).graph,
    // Judged on exact int8 kernels (forExactScoring): the choice is the model's, whatever this CPU sums.
    evaluate: (g) => top1(forExactScoring(g), choose, normalization, threads, g === graph ? 'choose: float' : g === int8 ? 'choose: int8' : 'choose: mixed'),
    ranking: async () => quantizedBySensitivity((run.sensitivity = await sensitivityFor(run, normalization, options)), userPlan),
    onOverBudget: (dropPt) => log(`top-1 drop ${dropPt.toFixed(2)} pt > --max-drop ${maxDrop}: ranking layers by sensitivity`),
    onStep: (s) => log(`  ${s.floatLayers} layer(s) float: top-1 ${formatPercent(s.top1)} (drop ${s.dropPt.toFixed(2)} pt)`),
  });
  run.maxDrop = { budgetPt: maxDrop, chosenOn: choose.source.count, met: mixed.met };
  // `met` is the choice's, on exact int8 kernels; quantize adds the held-out images' verdict on this CPU.
  run.extra['mixed_precision'] = { float_layers: mixed.floatLayers, met: mixed.met, chosen_on_images: choose.source.count, ...(int8KernelsSaturate() ? { chosen_on_exact_kernels: true } : {}), baseline_top1: mixed.baseline, steps: mixed.steps.map(mixedStepJson) };
  if (mixed.searched) {
    run.mixed = mixed;
    run.output = mixed.graph;
    run.result = buildQuantized(prepared, collector, opts, { exclude: opts.exclude, keptBySensitivity: mixed.floatLayers });
    if (!mixed.met) log(`warning: no split met --max-drop ${maxDrop}; kept the most accurate one (${mixed.floatLayers.length} float layers)`);
  }
  return report;
}

async function sensitivityFor(run: StaticRun, normalization: Normalization, options: QuantizeCliOptions): Promise<LayerSensitivity[]> {
  const { prepared, collector, options: staticOptions, calibSet } = run.calibrated;
  const inputName = dataInputs(prepared.graph)[0]!.name;
  const feeds = imageFeeds(sampleImages(calibSet, SENSITIVITY_IMAGES, options.seed), { inputName, normalization, batchSize: 32 });
  const bar = progress('sensitivity', 100, '%');
  try {
    return await layerSensitivity(prepared, collector, staticOptions, feeds, {
      ...(options.threads ? { threads: options.threads } : {}),
      onProgress: (d, t) => bar.update(Math.round((100 * d) / t)),
    });
  } finally {
    bar.stop();
  }
}

/** --report: PATH.md, PATH.json and PATH.svg (per-tensor SQNR, weight errors, layer sensitivity). */
export async function writeReport(file: string, run: StaticRun, summary: Record<string, unknown>, normalization: Normalization, options: QuantizeCliOptions): Promise<{ markdown: string; json: string; svg: string }> {
  const base = typeof options.report === 'string' ? options.report.replace(/\.(md|json|svg)$/, '') : join(dirname(options.output), `${basename(options.output).replace(/\.onnx$/, '')}.report`);
  const sensitivity = run.sensitivity ?? (await sensitivityFor(run, normalization, options));
  const images = sampleImages(run.calibrated.calibSet, REPORT_IMAGES, options.seed);
  const inputName = dataInputs(run.result.float)[0]!.name;
  const bar = progress('report', images.labels.length, 'img');
  let activations;
  try {
    activations = await activationErrors(run.result, imageFeeds(images, { inputName, normalization, batchSize: 32 }), {
      ...(options.threads ? { threads: options.threads } : {}),
      onProgress: (n) => bar.update(n),
    });
  } finally {
    bar.stop();
  }
  const s = run.calibrated.options;
  const report: QuantizeReport = {
    model: file,
    output: options.output,
    settings: { method: s.calibration.method, ...(s.calibration.method === 'percentile' ? { percentile: s.calibration.percentile } : {}), activations: s.activations, per_channel: s.perChannel, reduce_range: s.reduceRange, bias_correction: s.biasCorrection, equalize: s.equalize, cpu: resolveCpu(s.cpu), samples: run.calibrated.calibSet.labels.length },
    measured: { sensitivity_images: Math.min(SENSITIVITY_IMAGES, run.calibrated.calibSet.labels.length), sqnr_images: images.labels.length, exact_kernels: int8KernelsSaturate() },
    size_bytes_before: summary['size_bytes_before'] as number,
    size_bytes_after: summary['size_bytes_after'] as number,
    ...(typeof summary['top1_before'] === 'number' ? { top1_before: summary['top1_before'] } : {}),
    ...(typeof summary['top1_after'] === 'number' ? { top1_after: summary['top1_after'] } : {}),
    activations: activations.map((a) => {
      const p = run.result.params.tensors.get(a.tensor);
      return p?.kind === 'activation' ? { ...a, min: p.range.min, max: p.range.max, scale: p.scale, zero_point: p.zeroPoint } : a;
    }),
    weights: weightErrors(run.result),
    sensitivity,
    float_nodes: run.result.plan.float,
    ...(run.mixed && run.maxDrop ? { mixed_precision: { steps: run.mixed.steps, float_layers: run.mixed.floatLayers, chosen_on_images: run.maxDrop.chosenOn } } : {}),
  };
  const paths = { markdown: `${base}.md`, json: `${base}.json`, svg: `${base}.svg` };
  const text = (t: string): Uint8Array => new TextEncoder().encode(t);
  const json = {
    ...report,
    sensitivity: report.sensitivity.map(sensitivityJson),
    float_nodes: report.float_nodes.map(nodeReasonJson),
    ...(report.mixed_precision ? { mixed_precision: { steps: report.mixed_precision.steps.map(mixedStepJson), float_layers: report.mixed_precision.float_layers, chosen_on_images: report.mixed_precision.chosen_on_images } } : {}),
  };
  await writeFileAtomic(paths.json, text(`${JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`));
  await writeFileAtomic(paths.svg, text(sensitivitySvg(sensitivity)));
  await writeFileAtomic(paths.markdown, text(reportMarkdown(report, basename(paths.svg))));
  log(`report: ${paths.markdown}, ${paths.json}, ${paths.svg}`);
  return paths;
}
