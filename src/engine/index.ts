/**
 * The training engine: a Graph compiled once into a plan that LibTorch runs in native code (see
 * native.ts for the addon boundary, compile.ts for the plan, train.ts for the loop).
 */
export { refuseOtherRun, trainModel, type RunSettings, type EpochRecord, type TrainOptions, type TrainProgress, type TrainResult } from './train.js';
export { DeviceImageSet, EnginePlan, type PlanOptions } from './plan.js';
export { compilePlan, prepareForTraining, type CompiledPlan, type CompileOptions } from './compile.js';
export { loadNative, nativeAvailable, type DeviceName, type NativeOptimizerConfig, type NativeStepOptions } from './native.js';
export { makeSchedule, type Schedule, type ScheduleName, type ScheduleOptions } from './schedule.js';
export { readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
export { batchOf, planEpoch, type EpochAugment, type EpochPlan } from './epoch.js';
