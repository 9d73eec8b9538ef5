import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { usableCores } from '../util/cpu-quota.js';
import { exitWhenIdle } from './exit-gate.js';

/**
 * `slim train --nproc N`: N local workers (one per GPU, or N CPU processes), each the same `slim`
 * command with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, as
 * torchrun would. The launcher forwards SIGINT/SIGTERM, and as soon as one worker fails it names that
 * rank and stops the others (SIGTERM, then SIGKILL after a grace period), so a run never hangs on a
 * dead worker. Rank 0 keeps the terminal (stdout, progress); other ranks' output is prefixed on stderr,
 * except their error lines when they and rank 0 refused the command (exit 2: every rank refuses the
 * same bad flag or checkpoint, and rank 0 has said it).
 */

export interface LaunchOptions {
  nproc: number;
  /** The worker's `slim` arguments (e.g. ['train', ...]), without --nproc. */
  args: string[];
  device: 'cpu' | 'cuda';
  /** How to start `slim`: the node arguments before `args` (default: this process's own). */
  entry?: string[];
  /** Seconds between SIGTERM and SIGKILL when stopping workers (default 10). */
  graceSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** Where the launcher's own lines go (default stderr). */
  log?: (line: string) => void;
}

export interface WorkerExit {
  rank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchResult {
  /** 0 when every worker succeeded. */
  code: number;
  /** The first worker that failed, when one did. */
  failed?: WorkerExit;
  /** Every worker's exit, by rank. */
  exits: WorkerExit[];
  /** The signal the launcher itself received, when it was interrupted. */
  interrupted?: NodeJS.Signals;
  seconds: number;
}

/** How long the other ranks get to exit by themselves after one refused the command (exit code 2). */
const REFUSAL_GRACE_MS = 3000;

/** A free TCP port on loopback for the rendezvous (the usual small race, as torchrun's). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `args` without `--nproc N` / `--nproc=N`. */
export function withoutNproc(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nproc') i++;
    else if (!args[i]!.startsWith('--nproc=')) out.push(args[i]!);
  }
  return out;
}

/** CPU threads for each of `nproc` workers on this machine (they share its cores). */
export function threadsPerWorker(nproc: number): number {
  return Math.max(1, Math.floor(usableCores() / nproc));
}

export function describeExit(e: WorkerExit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  const started = performance.now();
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const base = o.env ?? process.env;
  const masterPort = base.MASTER_PORT ? Number(base.MASTER_PORT) : await freePort();
  const entry = o.entry ?? [...process.execArgv, process.argv[1]!];
  const grace = (o.graceSeconds ?? 10) * 1000;
  const workers: ChildProcess[] = [];
  const live = new Set<number>();
  let failed: WorkerExit | undefined;
  let interrupted: NodeJS.Signals | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let refusalTimer: NodeJS.Timeout | undefined;
  const exited: WorkerExit[] = [];
  // Other ranks' `slim: ` lines (errors, interruptions) wait for rank 0's exit: the same refusal is said once.
  const held: string[][] = Array.from({ length: o.nproc }, () => []);

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const rank of live) {
      workers[rank]!.kill(signal);
      // A stopped (SIGSTOP, frozen) worker only acts on the signal once it runs again.
      workers[rank]!.kill('SIGCONT');
    }
    // A frozen or stuck worker ignores SIGTERM: make sure it goes.
    killTimer ??= setTimeout(() => {
      for (const rank of live) {
        log(`slim: rank ${rank} did not stop within ${grace / 1000} s; killing it`);
        workers[rank]!.kill('SIGKILL');
      }
    }, grace);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    log(`slim: ${signal} — stopping ${live.size} worker${live.size === 1 ? '' : 's'}`);
    stopAll(signal);
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const exits = Array.from({ length: o.nproc }, (_, rank) => {
    const env: NodeJS.ProcessEnv = {
      ...base,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(o.nproc),
      LOCAL_WORLD_SIZE: String(o.nproc),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(masterPort),
      SLIM_LAUNCHED: '1',
      SLIM_LAUNCHER_PID: String(process.pid),
    };
    const child = spawn(process.execPath, [...entry, ...o.args], {
      env,
      stdio: rank === 0 ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    });
    workers.push(child);
    if (child.pid !== undefined) live.add(rank);
    if (rank > 0) {
      prefixLines(child.stdout, `[rank ${rank}] `, (line) => process.stderr.write(line));
      prefixLines(child.stderr, `[rank ${rank}] `, (line, text) => (text.startsWith('slim: ') ? held[rank]!.push(line) : process.stderr.write(line)));
    }
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        live.delete(rank);
        const exit: WorkerExit = { rank, pid: child.pid ?? -1, code, signal };
        exited[rank] = exit;
        if ((code !== 0 || signal) && !failed && !interrupted) {
          failed = exit;
          log(`slim: rank ${rank} (pid ${exit.pid}) ${describeExit(exit)}; stopping the other ranks`);
          // Code 2 is a refusal every rank meets (a flag, another run's checkpoint): they get a moment to exit with it by themselves.
          if (code === 2) refusalTimer = setTimeout(() => stopAll('SIGTERM'), REFUSAL_GRACE_MS);
          else stopAll('SIGTERM');
        }
        resolve();
      };
      child.once('exit', done);
      child.once('error', (e) => {
        log(`slim: rank ${rank} could not start: ${e.message}`);
        done(127, null);
      });
    });
  });
  log(`slim: started ${o.nproc} workers (${o.device}) rendezvousing on 127.0.0.1:${masterPort}; pids ${workers.map((w, r) => `rank ${r}=${w.pid}`).join(', ')}`);
  await Promise.all(exits);
  clearTimeout(refusalTimer);
  clearTimeout(killTimer);
  const first = exited[0];
  for (const [rank, lines] of held.entries()) {
    // Only a refusal (2) is the same on every rank; another failure there may be this rank's own cause.
    const refusedByAll = first?.code === 2 && exited[rank]?.code === 2;
    if (!refusedByAll) for (const line of lines) process.stderr.write(line);
  }
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  const seconds = (performance.now() - started) / 1000;
  if (interrupted) return { code: interrupted === 'SIGINT' ? 130 : 143, interrupted, seconds, exits: exited, ...(failed ? { failed } : {}) };
  if (failed) return { code: failed.code && failed.code > 0 ? failed.code : 1, failed, seconds, exits: exited };
  return { code: 0, seconds, exits: exited };
}

/** Copies a stream line by line with a prefix (partial last lines included); `write` gets the line as written and its text. */
function prefixLines(stream: NodeJS.ReadableStream | null, prefix: string, write: (line: string, text: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) write(`${prefix}${line}\n`, line);
  });
  stream.on('end', () => {
    if (pending) write(`${prefix}${pending}\n`, pending);
  });
}

/**
 * In a worker `--nproc` started: stops it when the launcher is gone (kill -9, the OOM killer, a CI
 * timeout). The launcher stops its workers on any signal it can catch; one it cannot leaves them
 * orphaned — training on unseen, writing --out and the checkpoint beside a rerun. Polled once a second
 * (a reparented process's ppid changes); the running step finishes first (exit-gate.ts).
 */
export function watchLauncher(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  const launcher = Number(env.SLIM_LAUNCHER_PID);
  if (!(launcher > 0)) return;
  const timer = setInterval(() => {
    if (process.ppid === launcher) return;
    clearInterval(timer);
    log(`slim: rank ${env.RANK ?? '?'}: the launcher (pid ${launcher}) is gone — stopping this worker (its last checkpoint is kept; rerun with --resume)`);
    exitWhenIdle(1);
  }, 1000);
  timer.unref();
}
