import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LINUX_PROC, otherLoadNote, watchOtherLoad, type ProcReader } from '../src/runtime/cpu-load.js';
import { fewerThreadsHint } from '../src/cli/train-options.js';

/** A /proc with two cores whose files the test sets between the samples. */
function fakeProc(self: number): ProcReader & { set(stat: string, pids: Record<number, string>): void } {
  let files: Record<string, string> = {};
  return {
    self,
    set(stat, pids) {
      files = { stat, ...Object.fromEntries(Object.entries(pids).map(([pid, line]) => [`${pid}/stat`, line])) };
    },
    read: (file) => files[file],
    pids: () => Object.keys(files).filter((f) => f.endsWith('/stat')).map((f) => Number(f.split('/')[0])),
  };
}

// user nice system idle iowait irq softirq steal, summed over cores (ignored), then each core: [busy, idle, steal].
const stat = (...cores: [number, number, number?][]): string =>
  `cpu  0 0 0 0 0 0 0 0 0 0\n${cores.map(([busy, idle, steal], i) => `cpu${i} ${busy} 0 0 ${idle} 0 0 0 ${steal ?? 0} 0 0\n`).join('')}`;
// pid (comm) state ppid … utime stime cutime cstime (fields 14–17).
const proc = (pid: number, comm: string, ppid: number, utime: number, cutime = 0): string =>
  `${pid} (${comm}) S ${ppid} 0 0 0 0 0 0 0 0 0 ${utime} 0 ${cutime} 0 20 0 1 0\n`;

describe('other load while timing', () => {
  it("counts what the machine's cores did beyond this process and its children, reaped ones included", () => {
    const p = fakeProc(100);
    p.set(stat([500, 500], [500, 500]), { 100: proc(100, 'node', 1, 50), 101: proc(101, 'slim bench (child)', 100, 10), 200: proc(200, 'other', 1, 5) });
    const stop = watchOtherLoad(p);
    // 400 jiffies elapse on each core (800 in all): 600 busy — 300 ours (the child ran 100 and was
    // reaped into our cutime, we ran 200), 300 someone else's: 0.75 of a core. The hypervisor's steal is
    // no process's.
    p.set(stat([800, 600, 50], [800, 600]), { 100: proc(100, 'node', 1, 250, 110), 200: proc(200, 'other', 1, 305) });
    expect(stop()).toEqual({ otherCores: 0.75, cores: 2 });
    // Pinned to core 0 (a container's cpuset): work on core 1 takes nothing from it.
    const pinned = fakeProc(100);
    pinned.set(stat([500, 500], [500, 500]), { 100: proc(100, 'node', 1, 50) });
    const pinnedStatus = { read: (f: string) => (f === '100/status' ? 'Name:\tnode\nCpus_allowed_list:\t0\n' : pinned.read(f)) };
    const stopPinned = watchOtherLoad({ ...pinned, ...pinnedStatus });
    pinned.set(stat([700, 700], [900, 500]), { 100: proc(100, 'node', 1, 150) });
    expect(stopPinned()).toEqual({ otherCores: 0.25, cores: 1 });
    expect(otherLoadNote({ otherCores: 0.75, cores: 2 })).toMatch(/^note: other processes kept 0\.8 of the 2 cores busy while timing/);
    expect(otherLoadNote({ otherCores: 0.1, cores: 2 })).toBeUndefined();
    // Training with more threads than the cores left free is told the count that fits (a trial: 45 img/s on 2 threads, 430 on 1).
    expect(fewerThreadsHint(2, { otherCores: 1.1, cores: 2 })).toBe('; 2 threads for 1 free core: --threads 1 may train faster (each step waits for the thread on a busy core)');
    expect(fewerThreadsHint(8, { otherCores: 2.8, cores: 8 })).toMatch(/^; 8 threads for 5 free cores: --threads 5 may/);
    expect(fewerThreadsHint(1, { otherCores: 1.1, cores: 2 })).toBe('');
    expect(fewerThreadsHint(2, { otherCores: 1.9, cores: 2 })).toMatch(/--threads 1 /); // never fewer than one
    // Nothing to read (not Linux): nothing said.
    expect(watchOtherLoad({ self: 1, read: () => undefined, pids: () => [] })()).toBeUndefined();
  });

  it.skipIf(!existsSync('/proc/stat'))("a child's CPU is this process's own work, not other load", async () => {
    // Two watches over the same second: one counting this process's tree as ours, one counting nothing
    // as ours. Whatever else runs, they differ by at least the busy child's share.
    const started = performance.now();
    const ours = watchOtherLoad(LINUX_PROC);
    const none = watchOtherLoad({ ...LINUX_PROC, self: -1 });
    // Half a second of CPU, however long a loaded machine takes to give it.
    const child = spawn(process.execPath, ['-e', 'while (process.cpuUsage().user + process.cpuUsage().system < 500_000);']);
    await new Promise((resolve) => child.on('exit', resolve));
    const [a, b] = [ours(), none()];
    const seconds = (performance.now() - started) / 1000;
    expect(a && b).toBeTruthy();
    // Core-seconds: the child's 0.5 (less a jiffy's rounding) is ours, and no one else's.
    expect((b!.otherCores - a!.otherCores) * seconds).toBeGreaterThan(0.4);
  });
});
