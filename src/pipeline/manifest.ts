/**
 * What a run directory remembers. `manifest.json` (rewritten atomically after every stage) lists the
 * current recipe's stages with their status; `stages/<key>.json` keeps every finished stage under the
 * hash of its inputs and options, so a rerun — or a run of an edited recipe — reuses every stage whose
 * key it already has, and a crashed run resumes at the stage that did not finish.
 */
import { processStartTime, sameProcessAlive } from '../util/process.js';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, platform, arch, release } from 'node:os';
import path from 'node:path';
import { SlimError, usageError } from '../errors.js';
import { writeFileAtomic } from '../onnx/io.js';
import type { EpochRecord } from '../engine/train.js';
import { epochJson, snakeSettings, type EpochJson } from '../report/json-records.js';
import type { BenchRow } from '../report/bench-row.js';
import type { BenchTarget } from '../runtime/benchmark-web.js';
import type { ClassAccuracy } from '../runtime/evaluate.js';
import { VERSION } from '../version.js';
import { shellCommand } from '../util/shell.js';
import type { StageKind } from './recipe.js';
import type { ArtifactRef } from './store.js';
import type { ConvLayoutSummary } from '../compress/quantize/index.js';

export const MANIFEST = 'manifest.json';
export const STAGE_CACHE = 'stages';

export type StageStatus = 'pending' | 'running' | 'done' | 'failed';

/** Training stages (train, finetune, distill) and the fine-tuning inside prune / QAT. */
export interface TrainingResult {
  history: EpochJson[];
  /** Engine top-1 after the last epoch on the `eval_images` first test images. */
  test_top1: number;
  steps: number;
  train_images: number;
  eval_images: number;
  resumed_from_epoch?: number;
  teacher?: string;
  /** Engine top-1 before the first step, of a model trained further (absent when it starts untrained, or resumed). */
  start_top1?: number;
  /** What the run said about the result, as `slim` commands say it (QAT below its start, alpha 1): the report repeats it. */
  notes?: string[];
}

export interface PruneResult {
  mode: 'structured' | 'unstructured';
  /** Per image; null when the model's H×W is free and unknown (never in a pipeline: its data gives the size). */
  macs_before: number | null;
  macs_after: number | null;
  params_before: number;
  params_after: number;
  ratio_chosen?: number;
  sparsity?: number;
  groups?: number;
  boundaries?: number;
  compensated?: boolean;
  /** Convs given back their calibrated output statistics after the cuts (compress/prune/renormalize.ts). */
  renormalized_layers?: number;
  steps: { step: number; macs: number; sparsity?: number; test_top1?: number; seconds: number }[];
  test_top1?: number;
  finetune_epochs: number;
  /** Each fine-tuning's epochs (one per step), on `finetune_eval_images` test images: the report draws them. */
  finetune_history?: EpochJson[][];
  /** Each fine-tuning's top-1 before its first step, the pruned model's (null where it resumed from a checkpoint). */
  finetune_start_top1?: (number | null)[];
  finetune_eval_images?: number;
}

export interface QuantizeResult {
  mode: string;
  /** The range method used (with `method: auto`, the one chosen). */
  method?: string;
  /** `method: auto`: output SQNR (dB) vs fp32 on held-out training images, per method. */
  method_scores?: Record<string, number>;
  samples?: number;
  calibration_seconds?: number;
  quantized_nodes?: number;
  float_nodes?: { node: string; op_type: string; reason: string }[];
  sensitivity?: { layer: string; op_type: string; score: number; agreement: number }[];
  /**
   * `max_drop`: baseline_top1/top1 on the test images it chose on (every other one); held_out on the
   * others, which did not take part in the choice (absent in records made before it was measured).
   */
  mixed_precision?: { float_layers: string[]; met: boolean; baseline_top1: number; top1: number; chosen_on_images?: number; held_out?: { images: number; baseline_top1: number; top1: number } };
  /** On a CPU with AMX and cpu: auto, the measured Conv layout (quantize/tune-layout.ts). */
  conv_layout?: ConvLayoutSummary;
  qat?: TrainingResult;
}

/** One benchmarked variant: `slim bench`'s row (from `slim bench` itself) plus the full evaluation. */
export interface VariantBench extends BenchRow {
  id: string;
  /** The stage kind that made it ('source' for the recipe's model file). */
  kind: StageKind | 'source';
  /** The variant it was made from. */
  from?: string;
  sha256: string;
  top1: number;
  top5: number;
  eval_images: number;
  per_class: ClassAccuracy[];
}

export interface BenchResult {
  threads: number;
  runs: number;
  /** Untimed runs before timing (absent in manifests older than this field: the default, 10). */
  warmup_runs?: number;
  /** The [H, W] models with a free height and width were measured at (`slim bench --image-size`). */
  image_size?: [number, number];
  batch: number;
  /** Where latency was timed (absent in older manifests and by default: 'host'). */
  target?: BenchTarget;
  /** What timed it, as `slim bench` names it (absent in older manifests: onnxruntime-node). */
  runtime?: string;
  /** The variants took turns while timed (absent in older manifests: timed one after another). */
  timed_in_turns?: boolean;
  /** Cores' worth of CPU other processes took while timing, of `cores` (Linux; absent elsewhere and in older manifests). */
  other_load_cores?: number;
  cores?: number;
  eval_data: string;
  variants: VariantBench[];
}

export interface DeployResultRecord {
  variant: string;
  target: string;
  /** Relative to the run directory. */
  out: string;
  files: number;
  total_bytes: number;
  model_bytes: number;
  /** sha256 of the bundle's model.onnx (as its slim.json records it): a reuse checks the bundle still holds it. */
  model_sha256?: string;
}

export interface StageResults {
  source: { file: string };
  train: TrainingResult;
  finetune: TrainingResult;
  distill: TrainingResult;
  prune: PruneResult;
  quantize: QuantizeResult;
  bench: BenchResult;
  deploy: DeployResultRecord;
}

export type RecordKind = keyof StageResults;

interface RecordBase<K extends RecordKind> {
  id: string;
  kind: K;
  /** Hash of everything the stage's output depends on. */
  key: string;
  status: StageStatus;
  from?: string;
  /** The model this stage made (the deployable one: BatchNormalization folded). */
  model?: ArtifactRef;
  /** The same model before folding, for stages that train it further. */
  trainable?: ArtifactRef;
  result?: StageResults[K];
  /** Wall time of the stage when it ran (not of a reuse). */
  seconds: number;
  gpu_seconds: number;
  cost: number;
  device: 'cpu' | 'cuda';
  started?: string;
  finished?: string;
  error?: string;
  /** This invocation took the stage from the store instead of running it. */
  reused?: boolean;
  /**
   * A --rerun of this finished stage under way, or interrupted (its run no longer lives): the result is
   * still the earlier one (bench stages, whose figures nothing else is made from).
   */
  rerun?: { started: string; seconds: number };
  /** The run data's hash (training and test images) when the stage ran: its scores are on those test images. */
  data_sha256?: string;
}

export type StageRecord = { [K in RecordKind]: RecordBase<K> }[RecordKind];

export interface MachineInfo {
  cpu: string;
  cores: number;
  os: string;
  node: string;
  slimkit: string;
}

export interface RunManifest {
  version: 1;
  name: string;
  description?: string;
  recipe: { file: string; sha256: string; text: string };
  data: { name: string; dir?: string; train_images: number; test_images: number; sha256: string };
  created: string;
  updated: string;
  machine: MachineInfo;
  /** Wall time of the latest invocation (reused stages cost ~0), and whether it finished. */
  wall_seconds: number;
  complete: boolean;
  gpu_price_per_hour: number;
  stages: StageRecord[];
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.versions.node,
    slimkit: VERSION,
  };
}

/** The most recently updated run folder under ./runs (`slim report` and `slim recommend` without one). */
export async function latestRun(): Promise<string> {
  const root = path.resolve('runs');
  const entries = await readdir(root).catch(() => [] as string[]);
  let best: { dir: string; time: number } | undefined;
  for (const name of entries) {
    const info = await stat(path.join(root, name, MANIFEST)).catch(() => undefined);
    if (info && (!best || info.mtimeMs > best.time)) best = { dir: path.join(root, name), time: info.mtimeMs };
  }
  if (!best) throw usageError('no run folder under ./runs', 'run `slim demo` (or `slim run recipe.yaml`) first, or name a run folder');
  return best.dir;
}

/** The manifest of a run folder the user named; a missing folder and a folder of something else are told apart. */
export async function requireRunManifest(runDir: string, fix: string, kind: 'input' | 'usage' = 'input'): Promise<RunManifest> {
  const manifest = await readManifest(runDir);
  if (manifest) return manifest;
  const found = await stat(runDir).catch(() => undefined);
  if (found?.isFile()) {
    const folder = path.dirname(runDir);
    throw new SlimError({ file: runDir, problem: 'is a file; a run folder is expected', fix: path.basename(runDir) === MANIFEST ? `pass its folder: ${folder}` : fix }, kind);
  }
  throw new SlimError({ file: runDir, problem: found ? 'is not a run folder (it has no manifest.json)' : 'does not exist', fix }, kind);
}

export async function readManifest(runDir: string): Promise<RunManifest | undefined> {
  const file = path.join(runDir, MANIFEST);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as RunManifest;
    if (m.version !== 1 || !Array.isArray(m.stages)) throw new Error('not a version-1 manifest');
    return { ...m, stages: m.stages.map(upgradeRecord) };
  } catch (e) {
    throw new SlimError({ file, problem: `is not a slimkit run manifest (${(e as Error).message})`, fix: 'point at a run folder made by `slim run`, or rerun the recipe with --fresh' });
  }
}

/**
 * A record as this version writes it. Run folders made before every JSON key was snake_case kept epoch
 * histories, prune steps and quantization's op names in camelCase (trainAccuracy, testAccuracy, opType);
 * their stages are still reused and reported.
 */
function upgradeRecord(record: StageRecord): StageRecord {
  const r = record.result as Record<string, unknown> | undefined;
  if (!r) return record;
  const epochs = (h: unknown): EpochJson[] | undefined =>
    Array.isArray(h) ? h.map((e: object) => ('trainLoss' in e ? epochJson(e as EpochRecord) : (e as EpochJson))) : undefined;
  const opType = <T>(list: unknown): T[] | undefined =>
    Array.isArray(list) ? list.map((x: Record<string, unknown>) => ('opType' in x ? (snakeSettings(x) as T) : (x as T))) : undefined;
  const upgraded: Record<string, unknown> = { ...r };
  if (r['history']) upgraded['history'] = epochs(r['history']);
  if (r['qat'] && typeof r['qat'] === 'object') {
    const qat = r['qat'] as Record<string, unknown>;
    upgraded['qat'] = { ...qat, history: epochs(qat['history']) };
  }
  if (record.kind === 'prune' && Array.isArray(r['steps'])) {
    upgraded['steps'] = (r['steps'] as Record<string, unknown>[]).map(({ testAccuracy, ...s }) => ({ ...s, ...(testAccuracy !== undefined ? { test_top1: testAccuracy } : {}) }));
  }
  if (r['float_nodes']) upgraded['float_nodes'] = opType(r['float_nodes']);
  if (r['sensitivity']) upgraded['sensitivity'] = opType(r['sensitivity']);
  return { ...record, result: upgraded } as StageRecord;
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

export async function writeManifest(runDir: string, manifest: RunManifest): Promise<void> {
  await writeFileAtomic(path.join(runDir, MANIFEST), json({ ...manifest, updated: new Date().toISOString() }));
}

/**
 * The same, synchronously, for a process that is exiting (Ctrl-C): written beside the manifest and renamed
 * over it, so a reader sees the old manifest or the new one.
 */
export function writeManifestNow(runDir: string, manifest: RunManifest): void {
  const file = path.join(runDir, MANIFEST);
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, json({ ...manifest, updated: new Date().toISOString() }));
  renameSync(temp, file);
}

export async function readStageRecord(runDir: string, key: string): Promise<StageRecord | undefined> {
  try {
    const record = upgradeRecord(JSON.parse(await readFile(path.join(runDir, STAGE_CACHE, `${key}.json`), 'utf8')) as StageRecord);
    return record.status === 'done' && record.key === key ? record : undefined;
  } catch {
    return undefined;
  }
}

export async function writeStageRecord(runDir: string, record: StageRecord): Promise<void> {
  await mkdir(path.join(runDir, STAGE_CACHE), { recursive: true });
  await writeFileAtomic(path.join(runDir, STAGE_CACHE, `${record.key}.json`), json({ ...record, reused: undefined }));
}

/**
 * One `slim run` per run directory at a time: `.lock` holds the owner's pid and start time. A lock whose
 * process is gone (a killed run), or whose pid now belongs to another process, is taken over.
 */
/** The pid a `.lock` names, when that process is still the one that wrote it ("pid [start time]"). */
function liveLockHolder(text: string): number | undefined {
  const [pidText, startTime] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  return Number.isInteger(pid) && pid > 0 && sameProcessAlive(pid, startTime) ? pid : undefined;
}

/** Whether a live `slim run` holds the run folder. */
export function runIsLive(runDir: string): boolean {
  try {
    return liveLockHolder(readFileSync(path.join(runDir, '.lock'), 'utf8')) !== undefined;
  } catch {
    return false;
  }
}

export async function lockRun(runDir: string): Promise<() => Promise<void>> {
  const file = path.join(runDir, '.lock');
  const busy = (pid: number): SlimError =>
    new SlimError({ file: runDir, problem: `another slim run (pid ${pid}) is using this run folder`, fix: `wait for it to finish, or pass --run-dir to use another folder (if no slim run is using it, delete ${file})` }, 'usage');
  // The lock never exists without its content: written beside it, then linked into place, which fails
  // when a lock is there. (Created empty and then written, a run arriving in between read an empty lock,
  // took it for a dead run's, and two runs held the folder.)
  const unique = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const temp = `${file}.${unique}.tmp`;
  const owner = [process.pid, processStartTime(process.pid)].filter(Boolean).join(' ');
  await writeFile(temp, owner);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(temp, file);
        return () => rm(file, { force: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A file system without hard links (some network and FUSE mounts): created exclusively instead.
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
          const taken = await writeFile(file, owner, { flag: 'wx' }).then(() => true, (err: NodeJS.ErrnoException) => {
            if (err.code !== 'EEXIST') throw err;
            return false;
          });
          if (taken) return () => rm(file, { force: true });
        } else if (code !== 'EEXIST') {
          throw e;
        }
      }
      const pid = liveLockHolder(await readFile(file, 'utf8').catch(() => ''));
      if (pid !== undefined && pid !== process.pid) throw busy(pid);
      // A dead run's lock is moved aside before it is removed: a lock another run took meanwhile comes back.
      const aside = `${file}.${unique}.stale.tmp`;
      if (await rename(file, aside).then(() => true, () => false)) {
        const holder = liveLockHolder(await readFile(aside, 'utf8').catch(() => ''));
        if (holder !== undefined && holder !== process.pid) {
          await link(aside, file).catch(() => undefined);
          await rm(aside, { force: true });
          throw busy(holder);
        }
        await rm(aside, { force: true });
      }
    }
  } finally {
    await rm(temp, { force: true });
  }
  throw new SlimError({ file, problem: 'cannot take the run lock', fix: 'remove the .lock file if no slim run is using the folder' });
}

/**
 * The `slim run` command that continues this run folder: its recipe, and --run-dir unless the folder is
 * where the recipe runs by default from here (runs/<name>), so following it does not start a run elsewhere.
 */
export function runAgainCommand(manifest: Pick<RunManifest, 'recipe' | 'name'>, runDir: string, extra: readonly string[] = []): string {
  // Relative to here when inside it, else as it is.
  const rel = (p: string): string => {
    const r = path.relative(process.cwd(), path.resolve(p));
    return r === '' ? '.' : r.startsWith('..') || path.isAbsolute(r) ? path.resolve(p) : r;
  };
  const elsewhere = path.resolve(runDir) !== path.resolve('runs', manifest.name);
  return shellCommand(['slim', 'run', rel(manifest.recipe.file), ...(elsewhere ? ['--run-dir', rel(runDir)] : []), ...extra]);
}
