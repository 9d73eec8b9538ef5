/**
 * The channel multiple ONNX Runtime's CPU convolutions run fastest at on this machine. MLAS runs Conv in
 * its blocked NCHWc layout only when input and output channel counts are multiples of its block size
 * (onnxruntime/core/optimizer/nchwc_transformer.cc): 16 floats with AVX-512, 8 with AVX2. A pruned
 * count in between (say 45 of 64) falls back to im2col + GEMM and loses much of the speedup that the
 * removed MACs promised. Elsewhere (ARM) 8 suits the SIMD GEMM kernels.
 */
import { readFileSync } from 'node:fs';
import { arch } from 'node:os';

let cached: number | undefined;

export function preferredChannelMultiple(): number {
  if (cached !== undefined) return cached;
  cached = 8;
  if (arch() === 'x64') {
    try {
      if (/\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) cached = 16;
    } catch {
      // No /proc (macOS, Windows): keep 8, right for AVX2.
    }
  }
  return cached;
}
