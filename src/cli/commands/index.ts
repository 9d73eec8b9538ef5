import type { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerCurves } from './curves.js';
import { registerDemo } from './demo.js';
import { registerDeploy } from './deploy.js';
import { registerDistill } from './distill.js';
import { registerDoctor } from './doctor.js';
import { registerEval } from './eval.js';
import { registerInfo } from './info.js';
import { registerOptimize } from './optimize.js';
import { registerPrune } from './prune.js';
import { registerQuantize } from './quantize.js';
import { registerRecommend } from './recommend.js';
import { registerReport } from './report.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerSplit } from './split.js';
import { registerTrain } from './train.js';
import { registerZoo } from './zoo.js';

/** Every `slim` subcommand, in the order `slim --help` lists them. */
export const COMMANDS: ReadonlyArray<(program: Command) => void> = [
  registerZoo,
  registerInfo,
  registerEval,
  registerBench,
  registerSplit,
  registerTrain,
  registerCurves,
  registerOptimize,
  registerPrune,
  registerDistill,
  registerQuantize,
  registerDeploy,
  registerServe,
  registerDoctor,
  registerRun,
  registerReport,
  registerRecommend,
  registerDemo,
];
