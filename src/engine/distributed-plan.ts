import type { CompiledPlan } from './compile.js';

/**
 * SyncBatchNorm: the same plan with every training-mode batch norm taking its statistics over all
 * ranks (native kernel "sync_batch_norm", same operands and parameters as "batch_norm"). In eval mode
 * and outside a process group the kernel is plain batch norm, so the plan stays usable everywhere.
 */
export function withSyncBatchNorm(plan: CompiledPlan): CompiledPlan {
  return { ...plan, steps: plan.steps.map((s) => (s.kernel === 'batch_norm' ? { ...s, kernel: 'sync_batch_norm' as const } : s)) };
}
