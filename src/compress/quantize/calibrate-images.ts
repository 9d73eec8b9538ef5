/**
 * Static int8 from images, as `slim quantize` and the pipeline's quantize stage both run it: prepare the
 * float graph, calibrate on a seeded sample of the images (batches sized to the tapped activations'
 * memory), then build with the configured range method or — under `auto` — with the method whose outputs
 * match fp32 best on images the sample left out (select-method.ts).
 */
import type { ImageSet, Normalization } from '../../data/types.js';
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { calibrationTargets, planQuantization } from './mark.js';
import { tapBytesPerSample, type ActivationCollector } from './calibrate/index.js';
import { batchSizeFor, heldOutImages, imageFeeds, sampleImages } from './feeds.js';
import { buildQuantized, calibratePlan, prepareFloatGraph, type PreparedGraph, type QuantizedResult, type StaticOptions } from './quantize.js';
import { AUTO_HELD_OUT_IMAGES, selectCalibrationMethod, type MethodChoice } from './select-method.js';

export interface CalibratedModel {
  prepared: PreparedGraph;
  collector: ActivationCollector;
  /** The options `result` was built with: under auto, calibration.method is the one chosen. */
  options: StaticOptions;
  result: QuantizedResult;
  /** The images calibrated on (`samples` of the set, drawn with `seed`). */
  calibSet: ImageSet;
  /** Set when auto compared the methods, on `heldOut`. */
  choice?: MethodChoice;
  heldOut?: ImageSet;
  calibrationSeconds: number;
}

export interface CalibrateImagesOptions {
  normalization: Normalization;
  samples: number;
  seed: number;
  /**
   * Compare every range method on up to AUTO_HELD_OUT_IMAGES images the sample left out and keep the best;
   * when the set has none left, the configured method is used.
   */
  auto: boolean;
  threads?: number;
  onProgress?(images: number): void;
}

export async function calibrateImages(graph: Graph, images: ImageSet, options: StaticOptions, o: CalibrateImagesOptions): Promise<CalibratedModel> {
  const calibSet = sampleImages(images, o.samples, o.seed);
  const heldOut = o.auto && images.labels.length > calibSet.labels.length ? heldOutImages(images, o.samples, AUTO_HELD_OUT_IMAGES, o.seed) : undefined;
  const threads = o.threads ? { threads: o.threads } : {};
  const prepared = prepareFloatGraph(graph, options);
  const plan = planQuantization(prepared.graph, prepared.facts, options);
  const inputName = dataInputs(prepared.graph)[0]!.name;
  const batchSize = batchSizeFor(tapBytesPerSample(calibrationTargets(plan), prepared.facts));
  const start = performance.now();
  const collector = await calibratePlan(prepared, plan, imageFeeds(calibSet, { inputName, normalization: o.normalization, batchSize }), options.calibration, {
    ...threads,
    channelMeans: options.biasCorrection,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  const calibrationSeconds = (performance.now() - start) / 1000;
  if (!heldOut) return { prepared, collector, options, result: buildQuantized(prepared, collector, options), calibSet, calibrationSeconds };
  const choice = await selectCalibrationMethod(prepared, collector, options, imageFeeds(heldOut, { inputName, normalization: o.normalization, batchSize: 64 }), threads);
  const chosen = { ...options, calibration: { ...options.calibration, method: choice.method } };
  return { prepared, collector, options: chosen, result: choice.result, calibSet, choice, heldOut, calibrationSeconds };
}
