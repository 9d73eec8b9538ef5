/**
 * The CPU time a cgroup allows this process (a container's `--cpus`, systemd's CPUQuota), in CPUs.
 * Node 20's os.availableParallelism() counts the CPUs the process may run on and ignores the quota, so
 * on a 16-core host a container limited to 2 CPUs would run ONNX Runtime and LibTorch with 16 threads —
 * throttled every period, its latencies measuring the throttling.
 *
 * cgroup v2: `cpu.max` ("QUOTA PERIOD" or "max PERIOD") in the process's cgroup and every ancestor; v1:
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us` (−1: none) in the cpu controller's hierarchy. The tightest
 * limit on the path applies. Inside a cgroup namespace the path is "/" and the files sit at the root.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';

export type ReadText = (file: string) => string | undefined;

const readText: ReadText = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** CPUs' worth of time the cgroup allows (1.5 = 150 ms per 100 ms), or undefined when unlimited or unknown. */
export function cgroupCpuQuota(read: ReadText = readText, root = '/sys/fs/cgroup'): number | undefined {
  const membership = read('/proc/self/cgroup');
  if (membership === undefined) return undefined;
  const limits: number[] = [];
  for (const line of membership.split('\n')) {
    // "0::/path" (v2) or "4:cpu,cpuacct:/path" (v1).
    const [, controllers, where] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (controllers === undefined || where === undefined) continue;
    if (controllers === '') {
      for (const dir of ancestors(path.join(root, where), root)) limits.push(...quotaOf(read(path.join(dir, 'cpu.max'))));
    } else if (controllers.split(',').includes('cpu')) {
      for (const base of [path.join(root, controllers), path.join(root, 'cpu')]) {
        for (const dir of ancestors(path.join(base, where), base)) {
          limits.push(...quotaOf(read(path.join(dir, 'cpu.cfs_quota_us')), read(path.join(dir, 'cpu.cfs_period_us'))));
        }
      }
    }
  }
  return limits.length ? Math.min(...limits) : undefined;
}

/** `dir` and each parent up to `root`, both included. */
function ancestors(dir: string, root: string): string[] {
  const top = path.resolve(root);
  const out: string[] = [];
  for (let at = path.resolve(dir); at.startsWith(top); at = path.dirname(at)) {
    out.push(at);
    if (at === top) break;
  }
  return out;
}

/** v2: quotaOf("150000 100000"); v1: quotaOf("150000", "100000"). Empty for no limit or unreadable. */
function quotaOf(first: string | undefined, period?: string): number[] {
  if (first === undefined) return [];
  const [q, p] = period === undefined ? first.trim().split(/\s+/) : [first.trim(), period.trim()];
  const quota = Number(q);
  const length = Number(p);
  return Number.isFinite(quota) && Number.isFinite(length) && quota > 0 && length > 0 ? [Math.round((quota / length) * 100) / 100] : [];
}

/** Threads worth running on this machine: threadsFor its CPUs and its cgroup quota. */
export function usableCores(): number {
  return threadsFor(availableParallelism(), cachedQuota());
}

/**
 * The CPUs a process may run on, no more than whole CPUs of its quota (at least 1): a thread more than
 * the quota holds is throttled every period, where one less leaves a fraction of a CPU unused.
 */
export function threadsFor(available: number, quota: number | undefined): number {
  return quota === undefined ? available : Math.max(1, Math.min(available, Math.floor(quota)));
}

let quotaRead: { value: number | undefined } | undefined;
function cachedQuota(): number | undefined {
  quotaRead ??= { value: cgroupCpuQuota() };
  return quotaRead.value;
}
