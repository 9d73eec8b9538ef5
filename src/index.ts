/**
 * slimkit as a library: `import { readModel, quantizeModel, evaluateModel } from 'slimkit'`.
 *
 * Every `slim` command is built from these functions. This entry holds what a program needs to train,
 * compress, measure and ship a model; each area's full surface (every pass, calibration method,
 * pruning criterion) is a subpath: 'slimkit/data', 'slimkit/passes', 'slimkit/quantize',
 * 'slimkit/prune', 'slimkit/qat', 'slimkit/distill', 'slimkit/engine'. Nothing is printed. Errors are
 * SlimErrors: `message` is the line a command prints; `parts.problem` and `parts.fix` say what went wrong
 * and what to do.
 */

// The IR: an ONNX-shaped Graph, read from and written to .onnx files.
export type { Attribute, AttributeValues, Dim, Graph, Node, ValueInfo } from './onnx/graph.js';
export type { DType } from './onnx/dtype.js';
export { float32, makeTensor, type Tensor } from './onnx/tensor.js';
export { cloneGraph, dataInputs } from './onnx/graph.js';
export { decodeModel, encodeModel, readModel, writeModel, type DecodeOptions, type EncodeOptions, type WriteOptions } from './onnx/io.js';
export { inferShapes, type InferenceResult } from './onnx/shape-inference.js';
export { validateGraph } from './onnx/validate.js';

// Models: the zoo, and what a model records about its inputs.
export { buildZooModel, countParameters, describeZoo, isZooName, ZOO, type ZooDescription, type ZooName, type ZooOptions } from './zoo/index.js';
export { normalizationOf, withClassNames } from './zoo/metadata.js';
// How a model was made (slim info's "made by slimkit"): each command's step record, in order.
export { modelSteps, withStep, type StepKey, type StepRecord } from './onnx/provenance.js';

// Images: CIFAR-10 (local, or downloaded once with a checksum check) and image folders.
export type { ImageSet, Normalization } from './data/types.js';
export { CIFAR10_CLASSES, loadCifar10, loadImageFolder, openImageFolder, stratifiedSubset, subset, take, type Cifar10Split, type ImageFolderSet, type ImageSource, type LoadCifar10Options, type LoadImageFolderOptions, type ResizeMode } from './data/index.js';

// Measuring with ONNX Runtime: accuracy, latency, size.
export { evaluateModel, measureModel, quantizeModel, type EvaluateModelOptions, type ModelSource, type QuantizeModelOptions, type QuantizeModelResult } from './toolkit.js';
export type { EvaluateResult, ClassAccuracy } from './runtime/evaluate.js';
export { benchmark, type BenchmarkOptions, type BenchmarkResult } from './runtime/benchmark.js';
export type { ModelStats } from './runtime/stats.js';
export { defaultThreads, openSession, type OrtModel, type SessionOptions } from './runtime/ort.js';

// Compressing: every step is a Graph → Graph function.
export { foldBatchNorm, INFERENCE_PIPELINE, runPasses, type Pass } from './passes/index.js';
export { convertFloat16, quantizeDynamic, type CalibrationMethod, type CpuChoice, type FloatNode } from './compress/quantize/index.js';
export { pruneStructured, pruneUnstructured, type ImportanceName, type Scope as PruneScope, type StructuredOptions, type StructuredResult, type Target as PruneTarget, type UnstructuredOptions, type UnstructuredResult } from './compress/prune/index.js';

// Training (needs the LibTorch addon: `npm run build:native`; nativeAvailable() says whether it loaded).
export { nativeAvailable, trainModel, type DeviceName, type EpochRecord, type ScheduleName, type TrainOptions, type TrainProgress, type TrainResult } from './engine/index.js';
export type { EpochAugment } from './engine/epoch.js';
export type { AutocastName } from './engine/native.js';
export { distill, type DistillOptions, type DistillResult } from './compress/distill/index.js';
export { quantizationAwareTraining, type QatOptions, type QatResult } from './compress/qat/index.js';

// Shipping: a bundle folder for linux-arm64, linux-x64 or the web.
export { deploy, type DeployOptions, type DeployResult } from './deploy/bundle.js';
export type { Target as DeployTarget } from './deploy/config.js';

export { SlimError, type ErrorKind, type ErrorParts } from './errors.js';
export { VERSION } from './version.js';
