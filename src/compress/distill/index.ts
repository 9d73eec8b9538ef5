/** Knowledge distillation: the public surface (the loss is defined once, in native/src/distill.cc). */
export { checkDistillSettings, checkPair, distill, DISTILL_DEFAULTS, distillRunSettings, type DistillOptions, type DistillResult } from './distill.js';
