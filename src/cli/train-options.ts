/** The training flags `slim train` and `slim distill` share, as the engine's TrainOptions. */
import { autocastFor, type PrecisionChoice } from '../engine/precision.js';
import type { TrainOptions } from '../engine/train.js';

export interface SharedTrainFlags {
  lr?: number;
  weightDecay?: number;
  warmup?: number;
  trainLimit?: number;
  testLimit?: number;
  threads?: number;
  /** commander's --no-augment: false turns augmentation off, anything else keeps the default. */
  augment?: boolean;
  checkpointDir?: string;
  resume?: boolean | string;
  log?: string;
  cudaGraphs?: boolean;
  precision?: PrecisionChoice;
}

type SharedKey = 'lr' | 'weightDecay' | 'warmup' | 'trainLimit' | 'testLimit' | 'threads' | 'augment' | 'checkpointDir' | 'resume' | 'log' | 'cudaGraphs' | 'autocast';

/** Only the flags the user gave: the engine's defaults stay in charge of the rest. */
export function sharedTrainOptions(o: SharedTrainFlags): Partial<Pick<TrainOptions, SharedKey>> {
  return {
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    ...(o.warmup !== undefined ? { warmup: o.warmup } : {}),
    ...(o.trainLimit !== undefined ? { trainLimit: o.trainLimit } : {}),
    ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.augment === false ? { augment: false as const } : {}),
    ...(o.checkpointDir ? { checkpointDir: o.checkpointDir } : {}),
    ...(o.resume !== undefined ? { resume: o.resume } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.cudaGraphs ? { cudaGraphs: true } : {}),
    ...(o.precision && autocastFor(o.precision) ? { autocast: autocastFor(o.precision)! } : {}),
  };
}
