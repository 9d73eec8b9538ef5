import { usageError } from '../errors.js';

/**
 * Where this process sits in a data-parallel run, read from the variables torchrun, `slim train
 * --nproc`, Kubernetes' PyTorchJob and most launchers set: RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. In a Slurm job step (what `srun` starts), SLURM_PROCID /
 * SLURM_STEP_NUM_TASKS / SLURM_LOCALID stand in for the first three when RANK is not set; MASTER_ADDR
 * and MASTER_PORT must still come from the job script. The job's own shell (sbatch's script, salloc)
 * is not a step: its SLURM_NTASKS is the allocation's, not a world this process is part of.
 */
export interface DistributedEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Which variables the rank came from, for messages. */
  source: 'torch' | 'slurm';
}

type Env = Readonly<Record<string, string | undefined>>;

function intVar(env: Env, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw usageError(`the environment variable ${name}=${raw} is not a whole number ≥ ${min}`, `fix ${name} in the launcher's environment`);
  return n;
}

/** The run's layout, or undefined when this process is not part of a multi-process run (WORLD_SIZE unset or 1). */
export function readDistributedEnv(env: Env = process.env): DistributedEnv | undefined {
  const world = launchedWorld(env);
  if (!world) return undefined;
  const { worldSize, source } = world;
  const names = source === 'torch' ? { rank: 'RANK', local: 'LOCAL_RANK' } : { rank: 'SLURM_PROCID', local: 'SLURM_LOCALID' };
  const rank = intVar(env, names.rank, 0);
  if (rank === undefined) throw usageError(`WORLD_SIZE is ${worldSize} but ${names.rank} is not set`, 'launch every process with its own RANK (torchrun, srun and `slim train --nproc` do)');
  if (rank >= worldSize) throw usageError(`${names.rank}=${rank} is not below the world size ${worldSize}`, 'ranks run from 0 to WORLD_SIZE − 1');
  const localRank = intVar(env, names.local, 0) ?? 0;
  const localWorldSize = intVar(env, 'LOCAL_WORLD_SIZE', 1) ?? intVar(env, 'SLURM_NTASKS_PER_NODE', 1) ?? 1;
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) {
    throw usageError(`rank ${rank} of ${worldSize} has no MASTER_ADDR`, 'set MASTER_ADDR to the host of rank 0 (and MASTER_PORT) in every process, as torchrun does');
  }
  const masterPort = intVar(env, 'MASTER_PORT', 1) ?? 29500;
  if (masterPort > 65535) throw usageError(`MASTER_PORT=${masterPort} is not a TCP port`, 'pick a free port in 1024–65535');
  return { rank, worldSize, localRank, localWorldSize, masterAddr, masterPort, source };
}

/** The size of the world a launcher started this process in, and which variable says it (undefined: none, or 1). */
function launchedWorld(env: Env): { worldSize: number; source: 'torch' | 'slurm'; variable: string } | undefined {
  const torchWorld = intVar(env, 'WORLD_SIZE', 1);
  const slurmWorld = env.RANK === undefined ? intVar(env, 'SLURM_STEP_NUM_TASKS', 1) : undefined;
  const worldSize = torchWorld ?? slurmWorld;
  if (worldSize === undefined || worldSize === 1) return undefined;
  return torchWorld !== undefined ? { worldSize, source: 'torch', variable: 'WORLD_SIZE' } : { worldSize, source: 'slurm', variable: 'SLURM_STEP_NUM_TASKS' };
}

/**
 * For the commands that train in one process (distill, QAT): started by torchrun or srun as one of
 * several ranks, each would train the whole job and write the same files — refused.
 */
export function refuseLaunchedRanks(command: string, env: Env = process.env): void {
  const world = launchedWorld(env);
  if (!world) return;
  throw usageError(
    `${command} trains in one process, and this one was started as one of ${world.worldSize} (${world.variable}=${world.worldSize}): each would train the whole job and write the same files`,
    'start it once, without torchrun or srun (slim train trains data-parallel: --nproc N, or under a launcher)',
  );
}

/**
 * Pins this process to its GPU before CUDA starts: with several GPUs visible, keep only the
 * LOCAL_RANK-th, so each worker's `cuda` is its own card. Returns the device it kept.
 */
export function pinGpu(localRank: number, env: Record<string, string | undefined> = process.env): string {
  const visible = env.CUDA_VISIBLE_DEVICES;
  const list = visible === undefined ? undefined : visible.split(',').map((s) => s.trim()).filter(Boolean);
  if (list && list.length === 1) return list[0]!;
  if (list && localRank >= list.length) {
    throw usageError(`LOCAL_RANK ${localRank} has no GPU: CUDA_VISIBLE_DEVICES lists ${list.length} (${visible})`, 'start at most one process per visible GPU');
  }
  const chosen = list ? list[localRank]! : String(localRank);
  env.CUDA_VISIBLE_DEVICES = chosen;
  return chosen;
}
