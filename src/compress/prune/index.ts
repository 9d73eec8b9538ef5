/** Pruning: structured channel removal over a dependency graph, unstructured and N:M sparsity, sizes. */
export type { ChannelContext, ChannelKeep, ChannelLink, ChannelParam, ChannelPorts, ChannelRule, NodeEdit, ParamRole, SlotRef } from './channel-rule.js';
export type { DepNode } from './node.js';
export type { Dependency } from './dependency.js';
export type { Group, GroupParam } from './group.js';
export { buildDependencyGraph, type Boundary, type ChannelSpace, type DependencyGraph } from './dependency-graph.js';
export { IMPORTANCE, IMPORTANCE_NAMES, scoreGroups, type Importance, type ImportanceContext, type ImportanceName } from './importance.js';
export { keptCounts, planFromCounts, planRemoval, refill, roundKept, type Plan, type PlanOptions, type Scope } from './plan.js';
export { keptChannels, removeChannels, sliceAxis, type RemoveOptions } from './apply.js';
export { channelMeans, readValues, type Calibration } from './calibrate.js';
export { asPruningSeesIt, groupLabels, keptWithNote, pinForPruning, pruneStructured, type GroupSummary, type SearchStep, type StructuredOptions, type StructuredResult, type Target } from './structured.js';
export { computeMasks, findWeights, masksFromZeros, nmMask, pruneUnstructured, type TensorSparsity, type UnstructuredOptions, type UnstructuredResult, type WeightRef } from './unstructured.js';
export { sizeReport, sparseTensorBytes, type SizeReport } from './size.js';
export { engineFineTuner, finetuneLr, crossEntropyGrad, type EngineTunerOptions, type FineTuner, type FineTuneOptions, type FineTuneResult } from './finetune.js';
export { epochsForStep, gradualSparsity, pruneStructuredIteratively, pruneUnstructuredGradually, type IterativeOptions, type StepRecord } from './iterative.js';
export { compareLatency, compareLatencySpread, latencyMeter, type LatencyOptions } from './latency.js';
export { preferredChannelMultiple } from './hardware.js';
