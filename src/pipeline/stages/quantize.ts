/**
 * quantize: static int8 (calibrated on training images, optional mixed precision under a top-1 budget
 * and a per-layer sensitivity scan for the report), dynamic int8, or float16 — the library calls
 * `slim quantize` makes.
 */
import { withLastStepAmended } from '../../onnx/provenance.js';
import { epochJson, nodeReasonJson, sensitivityJson } from '../../report/json-records.js';
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { validateGraph } from '../../onnx/validate.js';
import { take } from '../../data/subsets.js';
import { interleavedHalf, sourceOfSet, type ImageSource } from '../../data/stream.js';
import { usageError } from '../../errors.js';
import type { ImageSet, Normalization } from '../../data/types.js';
import { evaluate } from '../../runtime/evaluate.js';
import { mixesImages } from '../../onnx/image-mixing.js';
import { openSession } from '../../runtime/ort.js';
import { formatPercent } from '../../report/format.js';
import { normalizationFor } from '../../data/model-data.js';
import { usableCores } from '../../util/cpu-quota.js';
import {
  autoConvLayout,
  buildQuantized,
  calibrateImages,
  convertFloat16,
  DEFAULT_STATIC,
  describeChoice,
  imageFeeds,
  INT8_SYMMETRIC,
  layoutChoice,
  layerSensitivity,
  meetTopOneBudget,
  prepareFloatGraph,
  quantizeDynamic,
  quantizedBySensitivity,
  sampleImages,
  scoresByMethod,
  SENSITIVITY_IMAGES,
  UINT8_ASYMMETRIC,
  type QuantizedResult,
  type CalibrationMethod,
  type StaticOptions,
} from '../../compress/quantize/index.js';
import { forExactScoring } from '../../compress/quantize/unsigned-layout.js';
import { withinBudget } from '../../compress/quantize/mixed-precision.js';
import type { Progress } from '../../util/terminal.js';
import { flattenScores, unflattenScores } from '../../passes/flat-scores.js';
import type { QuantizeResult, TrainingResult } from '../manifest.js';
import type { QuantizeSpec } from '../recipe.js';
import { evalImageCount, evalSlice } from '../data.js';
import type { StageContext, StageOutput } from './context.js';
import { saturationNote } from '../../compress/quantize/cpu.js';
import { qatBelowStartLine } from '../../compress/qat/verdict.js';

export async function runQuantize(ctx: StageContext, spec: QuantizeSpec, from: string): Promise<StageOutput<'quantize'>> {
  const graph = await ctx.graphOf(from, 'model', { batches: spec.mode === 'static' });
  const threads = ctx.threads;
  if (spec.mode === 'dynamic') {
    const dyn = quantizeDynamic(prepareFloatGraph(graph, { equalize: false }).graph, { perChannel: !spec.per_tensor, reduceRange: spec.reduce_range, cpu: spec.cpu, exclude: spec.exclude });
    if (dyn.layers.length === 0) ctx.log('  warning: no MatMul/Gemm layer with constant weights: nothing was quantized (for CNNs use mode: static)');
    return done(dyn.graph, { mode: 'dynamic', quantized_nodes: dyn.layers.length });
  }
  if (spec.mode === 'fp16' || spec.mode === 'fp16-weights') {
    const fp16 = convertFloat16(prepareFloatGraph(graph, { equalize: false }).graph, spec.mode === 'fp16' ? 'full' : 'weights');
    return done(fp16.graph, { mode: spec.mode });
  }

  const data = await ctx.data();
  const normalization = normalizationFor(graph, {});
  let options: StaticOptions = {
    ...DEFAULT_STATIC,
    activations: spec.activation_type === 'int8' ? INT8_SYMMETRIC : UINT8_ASYMMETRIC,
    perChannel: !spec.per_tensor,
    reduceRange: spec.reduce_range,
    cpu: layoutChoice(spec.cpu, spec.reduce_range),
    exclude: spec.exclude,
    keepFirst: spec.keep_first,
    keepLast: spec.keep_last,
    biasCorrection: spec.bias_correction,
    equalize: spec.equalize,
    calibration: { ...DEFAULT_STATIC.calibration, ...(spec.method === 'auto' ? {} : { method: spec.method as CalibrationMethod }), percentile: spec.percentile },
  };
  // As `slim quantize --method auto`: every range method from the same histograms, judged on training
  // images the calibration did not see.
  const auto = spec.method === 'auto';
  const bar = ctx.progress('  calibrate', Math.min(spec.samples, data.train.labels.length), 'img');
  const calibrated = await calibrateImages(graph, data.train, options, {
    normalization,
    samples: spec.samples,
    seed: ctx.recipe.seed,
    auto,
    ...(threads ? { threads } : {}),
    onProgress: (n) => bar.update(n),
  }).finally(() => bar.stop());
  const { prepared, collector, choice, heldOut, calibSet, calibrationSeconds } = calibrated;
  options = calibrated.options;
  let built = calibrated.result;
  const methodScores = choice ? scoresByMethod(choice) : undefined;
  if (choice && heldOut) ctx.log(`  ${describeChoice(choice, heldOut.labels.length)}`);
  else if (auto) ctx.log(`  calibration method: ${options.calibration.method} (all ${data.train.labels.length} training images went to calibration, none were left over for method: auto to compare methods on${data.train.labels.length > 1 ? ` — samples: ${Math.floor(data.train.labels.length / 2)} keeps half for it` : ''})`);
  let output = built.graph;

  const inputName = dataInputs(prepared.graph)[0]!.name;
  const sensitivityFeeds = imageFeeds(sampleImages(calibSet, SENSITIVITY_IMAGES, ctx.recipe.seed), { inputName, normalization, batchSize: 32 });
  const scan = async (): Promise<Awaited<ReturnType<typeof layerSensitivity>>> => {
    const b = ctx.progress('  sensitivity', 100, '%');
    try {
      return await layerSensitivity(prepared, collector, options, sensitivityFeeds, { ...(threads ? { threads } : {}), onProgress: (d, t) => b.update(Math.round((100 * d) / t)) });
    } finally {
      b.stop();
    }
  };
  let sensitivity = spec.sensitivity ? await scan() : undefined;

  let mixed: QuantizeResult['mixed_precision'];
  if (spec.max_drop !== undefined) {
    const slice = evalSlice(data, spec.eval_limit);
    const evalSet = slice.testLimit !== undefined ? take(slice.test, slice.testLimit) : slice.test;
    // As `slim quantize --max-drop`: chosen on every other test image, its drop measured on the others.
    const whole = sourceOfSet(evalSet);
    const [choose, heldOut] = [interleavedHalf(whole, 0), interleavedHalf(whole, 1)];
    if (heldOut.count === 0) throw usageError(`max_drop chooses on half the test images and measures the drop on the other half: it needs 2 or more, and the stage has ${evalSet.labels.length}`, 'raise eval_limit');
    const userPlan = built.plan;
    const search = await meetTopOneBudget(prepared.graph, output, {
      maxDropPt: spec.max_drop,
      build: (floatLayers) => buildQuantized(prepared, collector, options, { exclude: options.exclude, keptBySensitivity: floatLayers }).graph,
      evaluate: (g) => scoreTop1(forExactScoring(g), choose, normalization, threads),
      ranking: async () => quantizedBySensitivity((sensitivity ??= await scan()), userPlan),
      onOverBudget: (dropPt) => ctx.log(`  top-1 drop ${dropPt.toFixed(2)} pt > max_drop ${spec.max_drop}: keeping the most sensitive layers in float`),
      onStep: (s) => ctx.log(`    ${s.floatLayers} layer(s) float: top-1 ${formatPercent(s.top1)} (drop ${s.dropPt.toFixed(2)} pt)`),
    });
    if (search.searched) {
      output = search.graph;
      built = buildQuantized(prepared, collector, options, { exclude: options.exclude, keptBySensitivity: search.floatLayers });
      if (!search.met) ctx.log(`  warning: no split met max_drop ${spec.max_drop}; kept the most accurate one (${search.floatLayers.length} float layers)`);
    }
    const held = { images: heldOut.count, baseline_top1: await scoreTop1(prepared.graph, heldOut, normalization, threads), top1: await scoreTop1(forExactScoring(output), heldOut, normalization, threads) };
    const heldDropPt = (held.baseline_top1 - held.top1) * 100;
    ctx.log(`  max_drop: top-1 drop ${((search.baseline - search.top1) * 100).toFixed(2)} pt on the ${choose.count} test images it chose on, ${heldDropPt.toFixed(2)} pt on the other ${held.images}`);
    if (!withinBudget(heldDropPt, spec.max_drop)) ctx.log(`  warning: on the test images max_drop did not choose on, the drop is past its ${spec.max_drop} pt (one image is ${(100 / held.images).toFixed(2)} pt there): raise eval_limit for a choice that holds, or allow a larger drop`);
    mixed = { float_layers: search.floatLayers, met: search.met, baseline_top1: search.baseline, top1: search.top1, chosen_on_images: choose.count, held_out: held };
  }
  for (const w of built.params.warnings) ctx.log(`  warning: ${w}`);
  // As `slim quantize`: on a CPU with AMX, each Conv on the int8 kernel measured faster at the bench's threads.
  const layout = await autoConvLayout(output, options.cpu, threads ?? usableCores());
  if (layout) {
    output = layout.graph;
    ctx.log(`  conv layout for ${layout.threads} thread(s): ${layout.summary.amx_convs} Conv(s) on AMX, ${layout.summary.convsym_convs} on ConvSym (measured)`);
  }
  let qat: TrainingResult | undefined;
  let gpuSeconds = 0;
  // QAT is judged as slim quantize --qat judges it: both written models scored by ONNX Runtime on the same
  // images (a trial's recipe compared the engine's fake-quant scores, and its bench disagreed).
  const ptqTop1 = spec.qat ? await scoreTop1(output, data.test, normalization, threads) : undefined;
  if (spec.qat) {
    const q = await runQat(ctx, spec.qat, output, built, normalization);
    output = q.graph;
    qat = q.result;
    gpuSeconds = q.gpuSeconds;
  }
  // As `slim quantize`: the bench stage's int8 top-1 on this machine is its saturating kernels' ('auto' lays the model for where it ships).
  const saturation = saturationNote(output, 'this int8 model');
  if (saturation) ctx.log(`  ${saturation.replace('slim quantize --cpu avx2', 'cpu: avx2 in a quantize stage')}`);
  // Scored as written, as slim quantize --eval records it: the model (and a bundle of it) states its own
  // top-1 (a trial's recipe bundle said none, though the bench stage had just scored it).
  const scored = { top1: await scoreTop1(output, data.test, normalization, threads), images: data.test.labels.length, data: data.test.name };
  ctx.log(`  int8 top-1 ${formatPercent(scored.top1)} (ONNX Runtime, ${scored.images.toLocaleString('en')} test images)${ptqTop1 !== undefined ? `; the PTQ model QAT started from: ${formatPercent(ptqTop1)}` : ''}`);
  // The PTQ model it started from may be the better one.
  const below = qat && ptqTop1 !== undefined && scored.top1 < ptqTop1
    ? qatBelowStartLine(scored.top1, ptqTop1, scored.images, spec.qat?.lr, { without: 'the same stage without qat makes the better model', lr: 'qat.lr', epochs: 'qat.epochs', evalMore: 'data.test_limit' })
    : undefined;
  if (below) ctx.log(`  ${below}`);
  if (qat && below) qat = { ...qat, notes: [...(qat.notes ?? []), below] };
  output = withLastStepAmended(output, qat ? 'slimkit.qat' : 'slimkit.quantization', { scored });
  return done(output, {
    mode: 'static',
    method: options.calibration.method,
    ...(methodScores ? { method_scores: methodScores } : {}),
    samples: calibSet.labels.length,
    calibration_seconds: calibrationSeconds,
    quantized_nodes: built.plan.units.size,
    float_nodes: built.plan.float.map(nodeReasonJson),
    ...(sensitivity ? { sensitivity: sensitivity.map(sensitivityJson) } : {}),
    ...(mixed ? { mixed_precision: mixed } : {}),
    ...(layout ? { conv_layout: layout.summary } : {}),
    ...(qat ? { qat } : {}),
  }, gpuSeconds);
}

function done(graph: Graph, result: QuantizeResult, gpuSeconds = 0): StageOutput<'quantize'> {
  validateGraph(graph);
  return { model: graph, result, gpuSeconds };
}

/** Quantization-aware training of the calibrated QDQ graph (src/compress/qat), resumable per epoch. */
async function runQat(ctx: StageContext, spec: NonNullable<QuantizeSpec['qat']>, graph: Graph, ptq: Pick<QuantizedResult, 'float' | 'reference'>, normalization: Normalization): Promise<{ graph: Graph; result: TrainingResult; gpuSeconds: number }> {
  // Scores shaped [N, classes, 1, 1] are trained as [N, classes], behind a Flatten put after quantization.
  const scores = flattenScores(graph);
  const flat = (g: Graph): Graph => (scores.original ? flattenScores(g).graph : g);
  const { quantizationAwareTraining } = await import('../../compress/qat/index.js');
  const data = await ctx.data();
  let bar: Progress | undefined;
  const evaluation = evalSlice(data, spec.eval_limit);
  const r = await quantizationAwareTraining({
    graph: scores.graph,
    float: flat(ptq.float),
    data: { train: data.train, test: evaluation.test },
    epochs: spec.epochs,
    batch: spec.batch,
    lr: spec.lr,
    learnableScales: spec.learnable_scales,
    device: spec.device ?? ctx.device,
    seed: ctx.recipe.seed,
    checkpointDir: ctx.workDir,
    resume: true,
    normalization,
    // The stage records the top-1 itself: the model stays independent of the test images (run.ts keys it so).
    recordEngineTop1: false,
    // The teacher is the model as given, not PTQ's bias-corrected float graph.
    ...(spec.distill ? { teacher: { graph: flat(ptq.reference) } } : {}),
    ...(evaluation.testLimit !== undefined ? { testLimit: evaluation.testLimit } : {}),
    ...(ctx.threads !== undefined ? { threads: ctx.threads } : {}),
    onProgress: (p) => {
      bar ??= ctx.progress('  qat', p.totalSteps, 'steps');
      bar.update(p.globalStep, { phase: `epoch ${p.epoch + 1}/${p.epochs} loss ${p.loss.toFixed(3)} ` });
    },
  }).finally(() => bar?.stop());
  for (const w of r.warnings) ctx.log(`  warning: ${w}`);
  ctx.log(`  QAT: engine top-1 ${formatPercent(r.testAccuracy)} after ${r.history.length} epoch(s)${r.startAccuracy !== undefined ? `, from ${formatPercent(r.startAccuracy)} before the first step` : ''}`);
  const images = evalImageCount(data, spec.eval_limit);
  const result: TrainingResult = {
    history: r.history.map(epochJson),
    test_top1: r.testAccuracy,
    steps: r.steps,
    train_images: data.train.labels.length,
    eval_images: images,
    ...(r.startAccuracy !== undefined ? { start_top1: r.startAccuracy } : {}),
  };
  return { graph: scores.original ? unflattenScores(r.graph, scores.original) : r.graph, result, gpuSeconds: r.gpuSeconds };
}

async function scoreTop1(graph: Graph, set: ImageSet | ImageSource, normalization: Normalization, threads: number | undefined): Promise<number> {
  const session = await openSession(encodeModel(graph).model, { ...(threads ? { threads } : {}), label: 'quantize stage' });
  try {
    return (await evaluate(session, set, { normalization, oneImagePerRun: mixesImages(graph) })).top1;
  } finally {
    await session.close();
  }
}
