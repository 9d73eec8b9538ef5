/** The CPU feature flags of a Linux x64 machine (/proc/cpuinfo's `flags` line); empty elsewhere. */
import { existsSync, readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';

export function linuxX64CpuFlags(cpuinfo = '/proc/cpuinfo'): string[] {
  if (platform() !== 'linux' || arch() !== 'x64' || !existsSync(cpuinfo)) return [];
  return /^flags\s*:(.*)$/m.exec(readFileSync(cpuinfo, 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
}

/**
 * Whether ONNX Runtime's int8 kernels on this machine can saturate: x64 without AVX-VNNI, AVX512-VNNI
 * or AMX-INT8 multiplies u8 by s8 with vpmaddubsw, which adds each pair of products in 16 bits (255·127·2
 * does not fit). Its int8 outputs then differ from the exact ones arm64, the web and VNNI CPUs compute,
 * unless the weights are 7-bit (--reduce-range). False off Linux x64 (no flags to read).
 */
export function int8KernelsSaturate(cpuinfo = '/proc/cpuinfo'): boolean {
  const flags = linuxX64CpuFlags(cpuinfo);
  return flags.length > 0 && !['avx512_vnni', 'avx_vnni', 'amx_int8'].some((f) => flags.includes(f));
}
