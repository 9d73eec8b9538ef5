import { option, usageError } from '../errors.js';

/**
 * Learning-rate schedules, computed in TS once per step (a few flops) and passed to the native step.
 * A schedule is a pure function of the global step, so resuming only needs the step number.
 */

export type ScheduleName = 'constant' | 'onecycle' | 'cosine';

export interface ScheduleOptions {
  name: ScheduleName;
  /** Peak learning rate. */
  lr: number;
  totalSteps: number;
  /** OneCycle: fraction of steps spent rising (PyTorch default 0.3). Cosine: fraction spent in linear warmup (default 0.05). */
  warmup?: number;
  /** OneCycle: start at lr / divFactor (default 25). */
  divFactor?: number;
  /** OneCycle: end at lr / divFactor / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** Cosine: the floor it decays to (default 0). */
  minLr?: number;
}

export type Schedule = (step: number) => number;

/** From `end` at pct = 1 to `start` at pct = 0 along half a cosine (PyTorch's _annealing_cos). */
function annealCos(start: number, end: number, pct: number): number {
  return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
}

export function makeSchedule(o: ScheduleOptions): Schedule {
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw usageError(`the learning rate (${option('--lr')}) must be a positive number, got ${o.lr}`, 'leave it out for the default of what trains (training, fine-tuning and QAT each have their own), or give a positive number');
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 1) throw usageError(`a schedule needs at least one step, got ${o.totalSteps}`);
  const total = o.totalSteps;
  switch (o.name) {
    case 'constant':
      return () => o.lr;
    case 'onecycle': {
      // torch.optim.lr_scheduler.OneCycleLR (two phases, cosine annealing), step by step.
      const pct = o.warmup ?? 0.3;
      if (!(pct > 0 && pct < 1)) throw usageError(`OneCycle's warm-up fraction must be in (0, 1), got ${pct}`);
      const initial = o.lr / (o.divFactor ?? 25);
      const min = initial / (o.finalDivFactor ?? 1e4);
      const peakStep = pct * total - 1;
      const lastStep = total - 1;
      return (step) => {
        if (step <= peakStep) return annealCos(initial, o.lr, peakStep > 0 ? step / peakStep : 1);
        return annealCos(o.lr, min, lastStep > peakStep ? Math.min(1, (step - peakStep) / (lastStep - peakStep)) : 1);
      };
    }
    case 'cosine': {
      const warmupSteps = Math.round((o.warmup ?? 0.05) * total);
      const min = o.minLr ?? 0;
      return (step) => {
        if (step < warmupSteps) return (o.lr * (step + 1)) / warmupSteps;
        const span = Math.max(1, total - warmupSteps);
        return annealCos(o.lr, min, Math.min(1, (step - warmupSteps) / span));
      };
    }
    default:
      throw usageError(`unknown schedule '${String(o.name)}'`, 'use constant, onecycle or cosine');
  }
}
