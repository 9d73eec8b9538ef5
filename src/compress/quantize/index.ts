/** Post-training quantization: the public surface (STYLE.md §3). */
export * from './types.js';
export * from './math.js';
export type { QuantContext, QuantPattern, QuantUnit, TensorMark } from './pattern.js';
export { calibrationTargets, nodeLabel, planQuantization, rootOf, type FloatNode, type PlannedTensor, type PlanOptions, type QuantPlan } from './mark.js';
export {
  ActivationCollector,
  addTaps,
  entropyRange,
  klThreshold,
  minMaxRange,
  mseRange,
  percentileRange,
  runCalibration,
  tapBytesPerSample,
  TensorHistogram,
  type FeedSource,
  type Feeds,
  type RunCalibrationOptions,
} from './calibrate/index.js';
export { computeParams, quantizeWeight, type ActivationQuant, type BiasQuant, type QuantParams, type TensorQuant, type WeightQuant } from './params.js';
export { insertQdq, type InsertOptions } from './insert-qdq.js';
export {
  buildQuantized,
  calibratePlan,
  DEFAULT_STATIC,
  prepareFloatGraph,
  quantizeStatic,
  type PreparedGraph,
  type QuantizedResult,
  type StaticOptions,
} from './quantize.js';
export { correctBiases } from './bias-correction.js';
export { equalizeCrossLayer, type EqualizeReport } from './equalize.js';
export { quantizeDynamic, type DynamicResult } from './dynamic.js';
export { convertFloat16, type Float16Mode, type Float16Result } from './fp16.js';
export { activationErrors, addDequantizedTaps, COSINE, METRICS, SQNR, weightErrors, type ErrorMetric, type MetricState, type TensorError } from './sqnr.js';
export { layerSensitivity, quantizableLayers, quantizedBySensitivity, rankBySensitivity, SENSITIVITY_IMAGES, type LayerSensitivity, type SensitivityOptions } from './sensitivity.js';
export { meetTopOneBudget, searchMixedPrecision, type TopOneBudget, type MixedPrecisionOptions, type MixedPrecisionResult, type MixedPrecisionStep } from './mixed-precision.js';
export { batchSizeFor, heldOutImages, imageFeeds, sampleImages, type ImageFeedOptions } from './feeds.js';
export { calibrateImages, type CalibrateImagesOptions, type CalibratedModel } from './calibrate-images.js';
export { AUTO_HELD_OUT_IMAGES, describeChoice, scoresByMethod, selectCalibrationMethod, type MethodChoice, type MethodScore } from './select-method.js';
export { reportMarkdown, sensitivitySvg, type QuantizeReport } from './report.js';
export { ortKernels, unfusedNodes, type OrtKernels } from './fusion.js';
export { padConvInputChannels, type PadChannelsResult } from './pad-channels.js';
export { toGenericLayout, type GenericLayoutResult } from './generic-layout.js';
export { autoConvLayout, tuneConvLayout, type ConvLayoutSummary, type ConvTiming, type TunedLayout } from './tune-layout.js';
export { CPU_CHOICES, hostInt8Cpu, layoutChoice, resolveCpu, retargetConvWeights, saturationNote, type CpuChoice, type Int8Cpu, type RetargetResult } from './cpu.js';
