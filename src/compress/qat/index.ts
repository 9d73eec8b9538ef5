/** Quantization-aware training: the public surface. */
export { toQatGraph, type QatBias, type QatGraph, type QatLayout, type QatWeight, type ToQatOptions } from './graph.js';
export { foldLiveBatchNorm, withLiveBatchNorm, type LiveBatchNorm, type LiveBatchNormGraph } from './batchnorm.js';
export { exportCpu, toCanonicalLayout, toCpuLayout, type CanonicalGraph } from './layout.js';
export { exportQat, MIN_SCALE, settledScale, settleScales, type ExportResult } from './export.js';
export { qatBelowStartLine, type QatVerdictWords } from './verdict.js';
export { checkPhasedResume, FOLDED_SEED_OFFSET, qatRunSettings, quantizationAwareTraining, QAT_DEFAULTS, type QatOptions, type QatResult, type QatSettings } from './train.js';
export { phaseFolder, QAT_PHASE_FOLDERS, type QatPhase } from './phases.js';
