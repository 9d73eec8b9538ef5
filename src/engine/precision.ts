/**
 * Training precision as users name it (--precision) and as the engine runs it (autocast). bf16 autocast
 * is the default on CUDA. On CPU it is opt-in: it roughly halves a step where the CPU has AMX-BF16 (Intel
 * Sapphire Rapids and later; ResNet18-CIFAR at batch 64 on 2 cores: 0.98 → 0.40 s, as fast as PyTorch's
 * own CPU autocast, bench/train-step.ts --precision bf16) and is
 * slower than fp32 where bf16 is emulated, so fp32 stays the CPU default and `slim train` says when
 * bf16 would pay.
 */
import { linuxX64CpuFlags } from '../util/cpu-flags.js';
import type { AutocastName, DeviceName } from './native.js';

export const PRECISIONS = ['auto', 'fp32', 'bf16', 'fp16'] as const;
export type PrecisionChoice = (typeof PRECISIONS)[number];

/** The engine's autocast for a --precision choice; undefined for 'auto' (the engine's default). */
export function autocastFor(choice: PrecisionChoice): AutocastName | undefined {
  if (choice === 'auto') return undefined;
  return choice === 'fp32' ? 'none' : choice;
}

/**
 * A one-line hint for CPU training: fp32 on a CPU where bf16 would be about twice as fast, or bf16 on
 * one without AMX-BF16, where it gains little or loses.
 */
export function precisionHint(device: DeviceName, choice: PrecisionChoice, amx = cpuHasAmxBf16()): string | undefined {
  if (device !== 'cpu') return undefined;
  if (choice === 'bf16' && !amx) return 'note: this CPU has no AMX-BF16, which made bf16 steps 2.45× shorter: here bf16 autocast gains little or is slower than --precision fp32 (without bf16 instructions at all it is emulated: an AVX2-only EPYC took 8.6× as long per step)';
  if ((choice !== 'auto' && choice !== 'fp32') || !amx) return undefined;
  return 'note: this CPU has AMX-BF16 — --precision bf16 trains about twice as fast (bf16 autocast; weights, optimizer and the written model stay fp32)';
}

/** The precision a run trains in, as its JSON records it: auto resolved for the device. */
export function resolvedPrecision(device: DeviceName, choice: PrecisionChoice): 'fp32' | 'bf16' | 'fp16' {
  return choice === 'auto' ? (device === 'cuda' ? 'bf16' : 'fp32') : choice;
}

/** Whether this CPU multiplies bf16 in hardware (AMX-BF16 tiles), from /proc/cpuinfo's flags. */
export function cpuHasAmxBf16(cpuinfo = '/proc/cpuinfo'): boolean {
  return linuxX64CpuFlags(cpuinfo).includes('amx_bf16');
}
