/**
 * Ctrl-C during training must not end the process while a LibTorch step or evaluation runs on a worker
 * thread: exiting then runs LibTorch's static destructors under the running work, and the process now
 * and then died by a signal instead of exiting 130 (seen in CI). The plan's native calls go through
 * `whileRunning`; `exitWhenIdle` exits at once when nothing is running, else as soon as the running
 * piece returns (a hung device gets a minute), and no new piece starts after it is asked.
 */
let running = 0;
let pendingExit: number | undefined;

/** Whether the process is already on its way out (a command's own interrupt handler has spoken). */
export function exitPending(): boolean {
  return pendingExit !== undefined;
}

export function exitWhenIdle(code: number): void {
  pendingExit = code;
  if (running === 0) process.exit(code);
  setTimeout(() => process.exit(code), 60_000).unref();
}

export async function whileRunning<T>(work: () => Promise<T>): Promise<T> {
  // The process is on its way out: this piece never starts (and never settles).
  if (pendingExit !== undefined) return new Promise<T>(() => undefined);
  running++;
  try {
    return await work();
  } finally {
    running--;
    if (pendingExit !== undefined && running === 0) process.exit(pendingExit);
  }
}
