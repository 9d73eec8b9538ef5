import { existsSync } from 'node:fs';
import path from 'node:path';
import { SlimError, usageError } from '../errors.js';
import { readDistributedEnv } from './distributed-env.js';
import { log } from '../util/terminal.js';
import { describeExit, launch, threadsPerWorker, withoutNproc, type LaunchResult } from './launch.js';

/**
 * `slim train --nproc N`: re-runs this very command as N workers through the launcher and turns a
 * failed worker into one error line that names its rank.
 */
export interface TrainLaunch {
  nproc: number;
  device: 'cpu' | 'cuda';
  /** The command line after `node slim` (process.argv.slice(2)). */
  argv: readonly string[];
  /** Set when the user chose --threads; otherwise CPU workers split the cores. */
  threads?: number;
  checkpointDir?: string;
}

export async function launchTraining(o: TrainLaunch): Promise<LaunchResult> {
  const inside = readDistributedEnv();
  if (inside || process.env.SLIM_LAUNCHED) {
    throw usageError(
      `--nproc starts its own workers, but this process already is ${inside ? `rank ${inside.rank} of ${inside.worldSize}` : 'a launched worker'}`,
      'drop --nproc when a launcher (torchrun, srun, a PyTorchJob) starts slim',
    );
  }
  const args = withoutNproc(o.argv);
  // N CPU workers share the cores; without this each would start one thread per core.
  if (o.device === 'cpu' && o.threads === undefined) args.push('--threads', String(threadsPerWorker(o.nproc)));
  const result = await launch({ nproc: o.nproc, args, device: o.device });
  // --resume only where a checkpoint was written: a failure at start-up (a missing --data folder) left none.
  const resume = !o.checkpointDir
    ? 'pass --checkpoint-dir to make runs resumable'
    : existsSync(path.join(o.checkpointDir, 'last.ckpt'))
      ? `rerun the same command with --resume to continue from the last good checkpoint in ${o.checkpointDir}`
      : `rerun it once the cause is fixed (${o.checkpointDir} holds no checkpoint yet)`;
  if (result.interrupted) {
    // As one process ends on Ctrl-C: said, and the shell's code for the signal (130, 143), not a failure's 1.
    const kept = !o.checkpointDir ? 'nothing was saved (pass --checkpoint-dir to make runs resumable)' : existsSync(path.join(o.checkpointDir, 'last.ckpt')) ? resume : `${o.checkpointDir} holds no checkpoint yet`;
    log(`slim train: ${result.interrupted === 'SIGINT' ? 'interrupted' : `stopped (${result.interrupted})`}; all ${o.nproc} workers were stopped — ${kept}`);
    process.exitCode = result.interrupted === 'SIGINT' ? 130 : 143;
    return result;
  }
  if (result.failed) {
    const f = result.failed;
    // Code 2 is a refusal of the command itself (a flag, a checkpoint of another run): its message says what to do, not a rerun.
    const refused = f.code === 2;
    throw new SlimError(
      { where: `rank ${f.rank} of ${o.nproc}`, problem: `the worker (pid ${f.pid}) ${describeExit(f)}, so the other ranks were stopped; ${refused ? 'the message above says why and what to do' : 'its own message, if any, is above'}`, ...(refused ? {} : { fix: resume }) },
      refused ? 'usage' : 'input',
    );
  }
  return result;
}
