/**
 * Static post-training quantization, step by step: prepare the float graph (BN folding and clean-up,
 * optional cross-layer equalization), plan, calibrate, (bias correction), compute parameters, insert
 * QDQ. The steps are exported so that sensitivity analysis and mixed precision can re-plan and
 * re-insert many times from one calibration.
 */
import type { Graph } from '../../onnx/graph.js';
import { inferShapes, type InferenceResult } from '../../onnx/shape-inference.js';
import { INFERENCE_PIPELINE, runPasses } from '../../passes/index.js';
import { untieWeightsPass } from '../../passes/untie-weights.js';
import { upgradeOpsetPass } from '../../passes/upgrade-opset.js';
import { ActivationCollector, runCalibration, type FeedSource } from './calibrate/index.js';
import { correctBiases } from './bias-correction.js';
import { resolveCpu, retargetConvWeights } from './cpu.js';
import { padConvInputChannels } from './pad-channels.js';
import { equalizeCrossLayer, type EqualizeReport } from './equalize.js';
import { insertQdq } from './insert-qdq.js';
import { untieSharedBiases } from './untie-biases.js';
import { calibrationTargets, planQuantization, type PlanOptions, type QuantPlan } from './mark.js';
import { qRange } from './math.js';
import { computeParams, type QuantParams } from './params.js';
import { DEFAULT_CALIBRATION, DEFAULT_QUANTIZE, type CalibrationSettings, type QuantizeOptions, type TensorRange } from './types.js';

export interface StaticOptions extends QuantizeOptions {
  calibration: CalibrationSettings;
  /** Remove the mean output shift that weight rounding causes (per channel, from calibration means). */
  biasCorrection: boolean;
  /** Cross-layer equalization of Conv → ReLU → Conv pairs before calibration. */
  equalize: boolean;
}

/**
 * The defaults: per-channel int8 weights, uint8 activations, percentile 99.999 % ranges, bias
 * correction on. Measured on the PyTorch-trained ResNet18-CIFAR (width 0.25, fp32 85.17 %), 512
 * calibration images, three calibration samples, 10,000 test images (bench/quantize-methods.ts):
 * percentile + bias correction gave +0.01 / +0.09 / +0.01 pt and 63.7 images on average whose class
 * differs from fp32; without bias correction −0.04 / −0.02 / −0.03 pt and 68.0; minmax 76.7; entropy
 * 64.3; mse + bias correction 61.7 (+0.03 / +0.03 / −0.02 pt). Differences under ~0.1 pt are within
 * the noise of 10,000 images; flips are the steadier measure.
 */
export const DEFAULT_STATIC: StaticOptions = { ...DEFAULT_QUANTIZE, calibration: DEFAULT_CALIBRATION, biasCorrection: true, equalize: false };

/** The float graph quantization starts from: inference clean-up (BN folded) and optional equalization. */
export interface PreparedGraph {
  graph: Graph;
  facts: InferenceResult;
  equalized?: EqualizeReport;
}

export function prepareFloatGraph(graph: Graph, options: Pick<StaticOptions, 'equalize'>): PreparedGraph {
  // Opset 13 first: QDQ with per-channel weights needs it (upgrade-opset.ts; a no-op from 13 on).
  // Untied next: QAT trains this graph, and each layer's weights must be its own (untie-weights.ts).
  // Shared biases last, once BN folding has made them: each layer needs its own int32 form (untie-biases.ts).
  let g = untieSharedBiases(runPasses(graph, [upgradeOpsetPass, untieWeightsPass, ...INFERENCE_PIPELINE]));
  let equalized: EqualizeReport | undefined;
  if (options.equalize) {
    const result = equalizeCrossLayer(g);
    g = result.graph;
    equalized = result.report;
  }
  return { graph: g, facts: inferShapes(g), ...(equalized ? { equalized } : {}) };
}

export interface CalibrateStepOptions {
  threads?: number;
  onProgress?(samples: number): void;
}

/** Calibrate every tensor the plan (or any smaller plan) may need, plus the means bias correction uses. */
export async function calibratePlan(
  prepared: PreparedGraph,
  plan: QuantPlan,
  feeds: FeedSource,
  settings: CalibrationSettings,
  options: CalibrateStepOptions & { channelMeans?: boolean; anyActivationFormat?: boolean } = {},
): Promise<ActivationCollector> {
  const targets = calibrationTargets(plan, { unfolded: options.anyActivationFormat ?? false });
  // Per-channel means of the layer inputs, for bias correction (on by default, as in DEFAULT_STATIC).
  const means = (options.channelMeans ?? true) ? layerInputs(prepared.graph) : undefined;
  return runCalibration(prepared.graph, prepared.facts, feeds, {
    targets: [...new Set([...targets, ...(means?.keys() ?? [])])],
    bins: settings.bins,
    ...(means ? { channelMeans: means } : {}),
    ...(options.threads ? { threads: options.threads } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}

/** Channel axis of the activation input of each weighted layer (1 for NCHW Conv and [N, K] Gemm). */
function layerInputs(graph: Graph): Map<string, number> {
  const out = new Map<string, number>();
  for (const node of graph.nodes) {
    if ((node.opType === 'Conv' || node.opType === 'Gemm') && node.inputs[0] && !node.attributes['transA']?.value) out.set(node.inputs[0], 1);
  }
  return out;
}

export interface QuantizedResult {
  graph: Graph;
  /** The float graph the quantized one was made from (after bias correction when on): QAT's starting weights. */
  float: Graph;
  /**
   * The float graph as prepared, before bias correction: the function the int8 model stands in for. Bias
   * correction shifts float biases so that the *int8* model matches this one on average; the corrected
   * float graph itself is another model (44 dB from this one on a small ResNet), no reference for errors.
   */
  reference: Graph;
  plan: QuantPlan;
  params: QuantParams;
  ranges: Map<string, TensorRange>;
}

/** Plan, (bias-correct,) compute parameters and insert QDQ, from one calibration. */
export function buildQuantized(
  prepared: PreparedGraph,
  collector: ActivationCollector,
  options: StaticOptions,
  planOptions: Partial<Pick<PlanOptions, 'only' | 'exclude' | 'keptBySensitivity'>> = {},
): QuantizedResult {
  const fmt = options.activations;
  const ranges = collector.ranges(options.calibration, fmt, qRange(fmt.type, { symmetric: fmt.symmetric }));
  const planFor = (g: Graph, facts: InferenceResult): QuantPlan => planQuantization(g, facts, { ...options, ...planOptions });
  let float = prepared.graph;
  let plan = planFor(float, prepared.facts);
  if (options.biasCorrection) {
    if (!collector.hasChannelMeans) throw new Error('bias correction needs per-channel means: calibrate with calibratePlan(..., { channelMeans: true })');
    float = correctBiases(float, plan, collector, options);
    plan = planFor(float, inferShapes(float));
  }
  const params = computeParams(float, plan, ranges, options);
  const cpu = resolveCpu(options.cpu);
  const description = {
    method: options.calibration.method,
    ...(options.calibration.method === 'percentile' ? { percentile: options.calibration.percentile } : {}),
    calibration_images: collector.samples,
    activations: `${fmt.type}${fmt.symmetric ? ' symmetric' : ' asymmetric'}`,
    weights: `${options.weightType} symmetric ${options.perChannel ? 'per channel' : 'per tensor'}${options.reduceRange ? ' (reduced range)' : ''}`,
    bias_correction: options.biasCorrection,
    equalize: options.equalize,
    cpu,
  };
  const inserted = insertQdq(float, plan, params, { description });
  const graph = retargetConvWeights(cpu === 'amx' ? padConvInputChannels(inserted).graph : inserted, cpu).graph;
  return { graph, float, reference: prepared.graph, plan, params, ranges };
}

/** Everything in one call: prepare, plan, calibrate on `feeds`, build. */
export async function quantizeStatic(graph: Graph, feeds: FeedSource, options: StaticOptions = DEFAULT_STATIC, step: CalibrateStepOptions = {}): Promise<QuantizedResult & { prepared: PreparedGraph; collector: ActivationCollector }> {
  const prepared = prepareFloatGraph(graph, options);
  const plan = planQuantization(prepared.graph, prepared.facts, options);
  const collector = await calibratePlan(prepared, plan, feeds, options.calibration, { ...step, channelMeans: options.biasCorrection });
  return { ...buildQuantized(prepared, collector, options), prepared, collector };
}
