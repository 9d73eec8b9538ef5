/**
 * How much CPU other processes took while we timed. A latency measured while something else keeps the
 * cores busy is slower and noisier than the same model on a quiet machine, and the spread of the runs
 * shows that only indirectly. Linux keeps the count: /proc/stat has every core's busy time, and
 * /proc/<pid>/stat the CPU time of this process and of each process it started (the timed children, a
 * browser's processes); what is left is other work's. Elsewhere there is nothing to read: undefined.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** What the watch reads; a test gives its own. */
export interface ProcReader {
  /** The text of a /proc file ('stat', '1234/stat'), or undefined when it is gone. */
  read(file: string): string | undefined;
  /** The pids /proc lists. */
  pids(): number[];
  /** This process. */
  self: number;
}

export const LINUX_PROC: ProcReader = {
  read(file) {
    try {
      return readFileSync(`/proc/${file}`, 'utf8');
    } catch {
      return undefined;
    }
  },
  pids: () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number),
  self: process.pid,
};

interface Sample {
  /** Busy and total jiffies over all cores. */
  busy: number;
  total: number;
  cores: number;
  /** CPU jiffies of this process and every process under it, the reaped ones included. */
  tree: number;
}

export interface OtherLoad {
  /** Cores' worth of CPU that other processes used while we timed (0 on a quiet machine). */
  otherCores: number;
  cores: number;
}

/** The CPUs this process may run on (Cpus_allowed_list: "0-3,8"), or undefined when not stated. */
function allowedCpus(proc: ProcReader): Set<number> | undefined {
  const list = proc.read(`${proc.self}/status`)?.match(/^Cpus_allowed_list:\s*(\S+)/m)?.[1];
  if (!list) return undefined;
  const cpus = new Set<number>();
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) cpus.add(c);
  }
  return cpus;
}

function sample(proc: ProcReader): Sample | undefined {
  const stat = proc.read('stat');
  if (!stat) return undefined;
  // Per core, the cores this process may use only: in a container pinned to some of the host's (cpuset),
  // work on the others takes nothing from it.
  const allowed = allowedCpus(proc);
  let busy = 0;
  let total = 0;
  let cores = 0;
  for (const line of stat.split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m || (allowed && !allowed.has(Number(m[1])))) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    if (v.length < 8 || v.some((x) => !Number.isFinite(x))) return undefined;
    // user nice system idle iowait irq softirq steal: idle and iowait are not work; steal is the
    // hypervisor's, not another process's.
    const [user, nice, system, idle, iowait, irq, softirq] = v as [number, number, number, number, number, number, number];
    busy += user + nice + system + irq + softirq;
    total += user + nice + system + irq + softirq + idle + iowait;
    cores++;
  }
  if (cores === 0) return undefined;
  // A child that exits while we time is reaped by its parent: its time moves into the parent's cutime.
  return { busy, total, cores, tree: treeTicks(proc, proc.self, { self: true, reaped: true }) };
}

/**
 * CPU jiffies of the processes under `root` (/proc/<pid>/stat utime + stime): `self` counts root's own,
 * `reaped` adds what each process's exited children used (cutime + cstime).
 */
export function treeTicks(proc: ProcReader, root: number, o: { self: boolean; reaped: boolean }): number {
  const parents = new Map<number, number>();
  const times = new Map<number, { own: number; reaped: number }>();
  for (const pid of proc.pids()) {
    const text = proc.read(`${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = text?.slice(text.lastIndexOf(')') + 2).split(' ');
    if (!fields || fields.length < 15) continue;
    parents.set(pid, Number(fields[1]));
    // utime stime cutime cstime: fields 14–17 of the line, 12–15 after the name.
    times.set(pid, { own: Number(fields[11]) + Number(fields[12]), reaped: Number(fields[13]) + Number(fields[14]) });
  }
  const children = new Map<number, number[]>();
  for (const [pid, parent] of parents) children.set(parent, [...(children.get(parent) ?? []), pid]);
  let ticks = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    const t = times.get(pid);
    if (t && (o.self || pid !== root)) ticks += t.own + (o.reaped ? t.reaped : 0);
    stack.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

/**
 * Starts watching; the function returned stops and says how many cores' worth of CPU other processes
 * used in between — undefined where /proc cannot tell (not Linux, or nothing measurable elapsed).
 */
export function watchOtherLoad(proc: ProcReader = LINUX_PROC): () => OtherLoad | undefined {
  const start = sample(proc);
  return () => {
    const end = start && sample(proc);
    if (!start || !end || end.cores === 0) return undefined;
    const elapsed = (end.total - start.total) / end.cores;
    if (!(elapsed > 0)) return undefined;
    const other = Math.max(0, end.busy - start.busy - (end.tree - start.tree));
    return { otherCores: Math.min(end.cores, other / elapsed), cores: end.cores };
  };
}

/** Other work above this many cores (and a tenth of the machine) makes timings worth repeating. */
export const BUSY_OTHER_CORES = 0.25;

/** What other work costs each activity: timings worth repeating, a training run's speed. */
const BUSY_EFFECT = {
  timing: 'latencies are slower and noisier than on a quiet machine — measure again when it is idle before trusting small differences',
  training: 'its img/s and time are lower than this machine gives when idle (what the model learned is the same)',
} as const;

/** The note for work done while other processes worked (timing by default), or undefined on a quiet enough machine. */
export function otherLoadNote(load: OtherLoad | undefined, activity: keyof typeof BUSY_EFFECT = 'timing'): string | undefined {
  if (!load || load.otherCores < Math.max(BUSY_OTHER_CORES, 0.1 * load.cores)) return undefined;
  return `note: other processes kept ${load.otherCores.toFixed(1)} of the ${load.cores} cores busy while ${activity}: ${BUSY_EFFECT[activity]}`;
}
