import { readFileSync } from 'node:fs';

/** Whether a process with this pid is running (kill(pid, 0): EPERM means alive, someone else's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process started, in clock ticks since boot (field 22 of /proc/PID/stat), or undefined where
 * there is no /proc. With the pid it names one process: pids are reused (quickly, in containers), start
 * times are not.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote (pid, start time) is still that one, running. */
export function sameProcessAlive(pid: number, startTime: string | undefined): boolean {
  if (!processAlive(pid)) return false;
  const now = processStartTime(pid);
  return startTime === undefined || now === undefined || now === startTime;
}
