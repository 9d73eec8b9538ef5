/** The CPU feature flags of a Linux x64 machine (/proc/cpuinfo's `flags` line); empty elsewhere. */
import { existsSync, readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';

export function linuxX64CpuFlags(cpuinfo = '/proc/cpuinfo'): string[] {
  if (platform() !== 'linux' || arch() !== 'x64' || !existsSync(cpuinfo)) return [];
  return /^flags\s*:(.*)$/m.exec(readFileSync(cpuinfo, 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
}
