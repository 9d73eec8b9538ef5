import { constantsPass } from './constants.js';
import { deadCodePass } from './dead-code.js';
import { foldBatchNormPass } from './fold-batchnorm.js';
import { fixWeightsPass } from './fix-weights.js';
import { foldShapesPass } from './fold-shapes.js';
import { freezeBatchNormPass } from './freeze-batchnorm.js';
import type { Pass } from './pass.js';
import { removeIdentityPass } from './remove-identity.js';
import { untieWeightsPass } from './untie-weights.js';
import { upgradeOpsetPass } from './upgrade-opset.js';

export { constantsToInitializers } from './constants.js';
export { eliminateDeadCode } from './dead-code.js';
export { foldBatchNorm } from './fold-batchnorm.js';
export { insertBatchNorm, type ChannelMoments } from './insert-batchnorm.js';
export { foldShapeSubgraphs } from './fold-shapes.js';
export { freezeBatchNorm } from './freeze-batchnorm.js';
export { freezeLayers, layerName, matchesPattern, parameterLayers, type FrozenLayers } from './freeze-layers.js';
export { classifierParameters, declareClassCount, findClassifierHead, replaceClassifierHead, type ClassifierHead } from './replace-head.js';
export { fixWeightsAsConstants } from './fix-weights.js';
export { removeIdentity } from './remove-identity.js';
export { reorderClassScores } from './reorder-classes.js';
export { untieIdentityWeights } from './untie-weights.js';
export { transferModel, type TransferModel, type TransferOptions } from './transfer.js';
export { upgradeOpset } from './upgrade-opset.js';
export { formatTrace, runPasses, type Pass, type PassTrace } from './pass.js';

/** Every pass by name, for `slim optimize --passes`. */
export const PASSES: Record<string, Pass> = Object.fromEntries(
  [fixWeightsPass, constantsPass, untieWeightsPass, foldShapesPass, removeIdentityPass, foldBatchNormPass, freezeBatchNormPass, deadCodePass, upgradeOpsetPass].map((p) => [p.name, p]),
);

/**
 * The inference clean-up pipeline, in order: weights as constants and Constant nodes as initializers
 * first (later passes read weights from initializers), shape folding before BN folding (it may expose
 * Conv → BN pairs), dead code last.
 */
export const INFERENCE_PIPELINE: readonly Pass[] = [
  fixWeightsPass,
  constantsPass,
  foldShapesPass,
  removeIdentityPass,
  foldBatchNormPass,
  deadCodePass,
];
