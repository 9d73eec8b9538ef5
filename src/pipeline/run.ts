/**
 * `runPipeline`: the recipe's stages in order, each skipped when the store already holds a finished
 * stage with the same key — the hash of its kind, its options, the hashes of the models it reads, the
 * data's hash and (where they change the result) the device, the seed and the machine. Editing one
 * stage therefore reruns that stage and only those after it whose inputs actually change; a run that
 * crashed reruns from the stage that did not finish (training itself resumes from its last epoch).
 */
import { rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { usableCores } from '../util/cpu-quota.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlimError, usageError } from '../errors.js';
import { dataInputs, type Graph } from '../onnx/graph.js';
import { hasFreeImageSize, imageAxes, rawPixelInput } from '../onnx/image-input.js';
import { networkOf } from '../data/model-batches.js';
import { exitWhenIdle } from '../engine/exit-gate.js';
import { splitPixelPreprocessing } from '../passes/pixel-preprocessing.js';
import { flattenScores } from '../passes/flat-scores.js';
import { formatNumbers } from '../report/format.js';
import { decodeModel, encodeModel, writeFileAtomic } from '../onnx/io.js';
import { defaultNormalizationNote, modelInputSize, recordedClasses, withGivenNormalization } from '../data/model-data.js';
import { recordedResize, replacedResizeNote, withTrainedResize } from '../data/model-resize.js';
import { METADATA_KEYS, modelChannels } from '../zoo/metadata.js';
import { buildZooModel, zooInputSize } from '../zoo/index.js';
import { freezeLayers } from '../passes/freeze-layers.js';
import { log as stderrLog, progress as stderrProgress } from '../util/terminal.js';
import { VERSION } from '../version.js';
import { resolveCpu, type Int8Cpu } from '../compress/quantize/index.js';
import { preferredChannelMultiple } from '../compress/prune/hardware.js';
import { evalImageCount, loadRunData, recordedCifar10Dir, type RunData } from './data.js';
import {
  lockRun,
  machineInfo,
  readManifest,
  readStageRecord,
  writeManifest,
  writeManifestNow,
  writeStageRecord,
  MANIFEST,
  STAGE_CACHE,
  type QuantizeResult,
  type RunManifest,
  type StageRecord,
  type StageResults,
} from './manifest.js';
import { FIELD_HELP, recipeResize, sourceId, type ModelSpec, type Recipe, type Stage } from './recipe.js';
import { anyBatch } from '../passes/any-batch.js';
import { sourceWithUndefinedOps } from './source-ops.js';
import { withMeasuredOpaqueTypes } from '../runtime/opaque-types.js';
import { ARTIFACTS, MODELS, hashOf, publishModel, unpublishModel, unpublishOthers, putBytes, putModel, readArtifactGraph, sha256, verifyArtifact, type ArtifactRef } from './store.js';
import { MODEL_FILE } from '../deploy/config.js';
import { runBench } from './stages/bench.js';
import type { StageContext, StageOutput, Variant } from './stages/context.js';
import { runDeploy } from './stages/deploy.js';
import { runPrune } from './stages/prune.js';
import { runQuantize } from './stages/quantize.js';
import { runDistill, runFinetune, runTrain } from './stages/training.js';

/** Bump when a stage's meaning changes, so old stored results are not reused for it. */
export const PIPELINE_VERSION = 1;

export interface RunPipelineOptions {
  recipe: Recipe;
  /** Default: runs/<recipe name> under the current folder. */
  runDir?: string;
  /** Overrides the recipe's device. */
  device?: 'cpu' | 'cuda';
  threads?: number;
  /** CIFAR-10 folder when the recipe has no data.dir. */
  dataDir?: string;
  /** Stage ids to run even when the store has them. */
  rerun?: readonly string[];
  /** Delete the run folder first. */
  fresh?: boolean;
  /** `slim` as a command line, for the bench stage; default: this package's bin/slim.js. */
  slimCommand?: readonly string[];
  log?: (line: string) => void;
  progress?: StageContext['progress'];
  /**
   * Before the first stage that runs (none reused): the caller withdraws what describes the last run's
   * outputs as current (the CLI: the report), which this run is about to replace.
   */
  beforeFirstRun?: (runDir: string) => Promise<void>;
}

export interface RunOutcome {
  runDir: string;
  manifest: RunManifest;
  ran: string[];
  reused: string[];
}

const TRAINING_KINDS = new Set(['train', 'finetune', 'distill', 'prune']);

/** The stage's output depends on the device it trains on (part of its key). */
export function trainsOnDevice(stage: Stage): boolean {
  return TRAINING_KINDS.has(stage.kind) || (stage.kind === 'quantize' && stage.spec.qat !== undefined);
}

export function defaultRunDir(recipe: Recipe): string {
  return path.resolve('runs', recipe.name);
}

/** How often a running stage's time so far is saved to the manifest (SLIM_RUN_SAVE_MS: tests shorten it). */
const RUNNING_SAVE_MS = Number(process.env['SLIM_RUN_SAVE_MS']) || 30_000;

export function defaultSlimCommand(): string[] {
  return [process.execPath, path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/slim.js')];
}

export async function runPipeline(o: RunPipelineOptions): Promise<RunOutcome> {
  const { recipe } = o;
  const runDir = path.resolve(o.runDir ?? defaultRunDir(recipe));
  const log = o.log ?? stderrLog;
  checkRerun(recipe, o.rerun);
  // LibTorch's OpenMP threads spin while they wait; on a busy machine (CI, other jobs) spinning threads
  // steal the cores the working ones need — measured here: 2× slower training under load. Passive
  // waiting must be chosen before the addon loads; a value the user set wins.
  process.env['OMP_WAIT_POLICY'] ??= 'PASSIVE';
  await checkRunDir(runDir);
  await mkdir(runDir, { recursive: true });
  // The lock first: --fresh must not delete a folder another run is writing.
  const unlock = await lockRun(runDir);
  if (o.fresh) {
    try {
      await clearRunDir(runDir, log);
    } catch (e) {
      await unlock();
      throw e;
    }
  }
  const started = performance.now();
  let saveOnExit: (() => void) | undefined;
  // Ctrl-C or SIGTERM: say what is kept and how to go on (the stage in progress stays 'running' in the
  // manifest; the report calls it interrupted), free the folder and exit as interrupted programs do.
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    // --rerun starts its stages over each time; without it their earlier results stand.
    const again = o.rerun?.length
      ? `run the same command again to go on (the --rerun stage${o.rerun.length > 1 ? 's' : ''} ${o.rerun.join(', ')} start${o.rerun.length > 1 ? '' : 's'} over; without --rerun the earlier result${o.rerun.length > 1 ? 's are' : ' is'} kept)`
      : 'run the same command again to resume (a training stage continues from its last finished epoch)';
    log(`\nslim run: ${signal === 'SIGINT' ? 'interrupted' : 'stopped (SIGTERM)'} — finished stages are kept in ${runDir}; ${again}`);
    // Freed as the process ends, not before: the running step may still write for a while. The manifest
    // then gets the running stage's time so far (it kept the last half minute's, 0 s in its first).
    process.once('exit', () => {
      try {
        saveOnExit?.();
      } catch {
        // The time is cosmetic; the lock must still go.
      }
      rmSync(path.join(runDir, '.lock'), { force: true });
    });
    // After a training stage's running step, not under it (engine/exit-gate.ts).
    exitWhenIdle(signal === 'SIGINT' ? 130 : 143);
  };
  const onInterrupt = (): void => onSignal('SIGINT');
  const onTerminate = (): void => onSignal('SIGTERM');
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onTerminate);
  try {
    const previous = await readManifest(runDir);
    await writeFileAtomic(path.join(runDir, 'recipe.yaml'), new TextEncoder().encode(recipe.text));
    log(`run ${recipe.name} → ${path.relative(process.cwd(), runDir) || '.'}`);
    const dataStart = performance.now();
    const dataDir = o.dataDir ?? recordedDataDir(recipe, previous, log);
    const { sourceBytes, sourceFile, data, unscored } = await recipeInputs(recipe, { ...(dataDir ? { dataDir } : {}), log });
    log(`data: ${data.name}, ${data.train.labels.length.toLocaleString('en')} training and ${data.test.labels.length.toLocaleString('en')} test images (${((performance.now() - dataStart) / 1000).toFixed(1)} s)`);

    const manifest: RunManifest = {
      version: 1,
      name: recipe.name,
      ...(recipe.description ? { description: recipe.description } : {}),
      recipe: { file: path.resolve(recipe.file), sha256: sha256(recipe.text), text: recipe.text },
      data: { name: data.name, ...(data.dir ? { dir: data.dir } : {}), train_images: data.train.labels.length, test_images: data.test.labels.length, sha256: data.sha256 },
      created: previous?.created ?? new Date().toISOString(),
      updated: new Date().toISOString(),
      machine: machineInfo(),
      wall_seconds: 0,
      complete: false,
      gpu_price_per_hour: recipe.gpuPricePerHour,
      stages: [],
    };
    const variants = new Map<string, Variant>();
    const graphs = new Map<string, Graph>();
    const batched = new Map<string, Graph>();
    const graphOf = async (id: string, form: 'model' | 'trainable', use: { batches?: boolean; trains?: boolean } = {}): Promise<Graph> => {
      const v = variants.get(id);
      if (!v) throw new Error(`no variant '${id}'`);
      const ref = form === 'trainable' ? (v.trainable ?? v.model) : v.model;
      let g = graphs.get(ref.sha256);
      if (!g) graphs.set(ref.sha256, (g = await readArtifactGraph(runDir, ref)));
      if (!use.batches) return g;
      // Stages that train or calibrate feed normalized float32 N×C×H×W batches: a source exported for
      // one batch size is freed (passes/any-batch.ts), one that preprocesses raw pixels itself is worked
      // on as the network it wraps (data/model-batches.ts), and the models those stages write take any
      // batch of normalized images (their metadata records the mean and std).
      let b = batched.get(ref.sha256);
      if (!b) {
        if (rawPixelInput(g)) {
          const network = networkOf(g, `'${id}'`, { quiet: true });
          log(`note: '${id}' takes ${rawPixelInput(g)!.text} images and preprocesses them itself: stages that train or calibrate work on the network after that, and the models they write take float32 N×C×H×W images normalized as it recorded (mean ${formatNumbers(network.normalization!.mean)}, std ${formatNumbers(network.normalization!.std)})`);
          g = network.graph;
        }
        const freed = anyBatch(g, { ...(sourceFile && v.kind === 'source' ? { file: sourceFile } : {}) });
        if (freed.fixedBatch !== undefined) log(`note: '${id}' was exported for a batch of ${freed.fixedBatch} only: stages that train or calibrate work on batches of any size, and the models they write take any batch`);
        // Ops slimkit has no definition for were measured at the exported batch: again, now freed.
        const measured = freed.fixedBatch !== undefined ? await withMeasuredOpaqueTypes(freed.graph, `'${id}'`) : { graph: freed.graph };
        batched.set(ref.sha256, (b = measured.graph));
      }
      // Stages that train take scores shaped [N, classes, 1, 1] as [N, classes]: their models keep that form.
      return use.trains ? flattenScores(b).graph : b;
    };
    // Saves one after another: a periodic save still writing must not land after a later one.
    let saving = Promise.resolve();
    const save = (): Promise<void> => {
      const snapshot = { ...manifest, stages: [...manifest.stages], wall_seconds: (performance.now() - started) / 1000 };
      saving = saving.catch(() => undefined).then(() => writeManifest(runDir, snapshot));
      return saving;
    };

    const source = sourceBytes ? await addSource(recipe, runDir, manifest, sourceBytes) : undefined;
    if (source) {
      variants.set(source.id, source);
      await publishModel(runDir, source.model, source.id);
    }
    const ran: string[] = [];
    const reused: string[] = [];
    let last = source?.id;
    const first = manifest.stages.length; // the source model's record, when there is one, comes first
    // Models of stages this recipe no longer has (renamed, removed) leave models/ now, not only when the
    // run completes: a run that fails midway must not leave them beside this recipe's. Their bytes stay in the store.
    const made = new Set([...variants.keys(), ...recipe.stages.map((s) => s.id)]);
    for (const gone of await unpublishOthers(runDir, made)) log(`removed models/${gone}.onnx: no stage of this recipe makes it (any more)`);
    for (const [i, stage] of recipe.stages.entries()) {
      const at = first + i;
      const device = stageDevice(stage) ?? o.device ?? recipe.device;
      const input = inputOf(stage, last, variants, unscored);
      if (stage.kind === 'bench' && !stage.spec.variants && unscored.size) log(`  note: ${[...unscored].map((id) => `'${id}'`).join(', ')} scores other classes than the data: left out of this bench`);
      const threads = o.threads ?? recipe.threads;
      const keyContext: KeyContext = { device, data, variants, input, seed: recipe.seed, model: recipe.model, recipeName: recipe.name, ...(threads ? { threads } : {}) };
      log(`[${i + 1}/${recipe.stages.length}] ${stage.kind} '${stage.id}'${input.from ? ` ← ${input.from}` : ''}`);
      const rerun = o.rerun?.includes(stage.id);
      const { key, stored } = rerun ? { key: stageKey(stage, keyContext), stored: undefined } : await storedStage(runDir, stage, keyContext, { move: true });
      let record: StageRecord;
      if (stored && (await artifactsIntact(runDir, stored))) {
        // Cost follows today's price (the recipe's gpu_price_per_hour may have changed since).
        record = { ...stored, id: stage.id, ...(input.from ? { from: input.from } : {}), cost: (stored.gpu_seconds / 3600) * recipe.gpuPricePerHour, reused: true } as StageRecord;
        reused.push(stage.id);
        log(`  reused: finished before (${stored.seconds.toFixed(1)} s then, key ${key.slice(0, 12)})`);
        const stale = staleScoresNote(stage, stored, data);
        if (stale) log(stale);
      } else {
        const base = { id: stage.id, kind: stage.kind, key, device, seconds: 0, gpu_seconds: 0, cost: 0, started: new Date().toISOString(), ...(input.from ? { from: input.from } : {}), data_sha256: data.sha256 };
        // The model an earlier version of this stage published goes first: should this run fail, models/
        // must not offer it as the stage's output.
        await unpublishModel(runDir, stage.id);
        if (ran.length === 0) await o.beforeFirstRun?.(runDir);
        // So go those made from it last time: until they run again (or are found the same), models/
        // must not offer a model derived from the one this run replaces.
        for (const id of madeFrom(previous, stage.id)) await unpublishModel(runDir, id);
        // Nor deploy/ a bundle of one (this stage's own, or one deployed from a model made from it): a
        // device must not be given a model the run no longer has.
        for (const id of [stage.id, ...madeFrom(previous, stage.id)]) await withdrawBundle(runDir, previous, id);
        // --rerun means from the start: not from the epoch checkpoints a crashed run of it left.
        if (rerun) await rm(path.join(runDir, 'work', key.slice(0, 16)), { recursive: true, force: true });
        // A --rerun of a finished bench keeps its earlier figures in the manifest until the new ones are in:
        // an interrupted rerun leaves the run as it was, as the Ctrl-C message says, not without a bench.
        const earlier = rerun && stage.kind === 'bench' ? await readStageRecord(runDir, key) : undefined;
        // A stage an interrupted run left with checkpoints continues from them: its time is that run's
        // and this one's (a trial's resumed training stage was recorded at a third of its time).
        const interrupted = previous?.stages.find((s) => s?.id === stage.id && s.key === key && s.status === 'running');
        const carried = interrupted && !rerun && (await readdir(path.join(runDir, 'work', key.slice(0, 16))).catch(() => [])).length > 0 ? interrupted.seconds : 0;
        const running = (seconds: number): StageRecord =>
          earlier
            ? { ...earlier, id: stage.id, ...(input.from ? { from: input.from } : {}), reused: true, rerun: { started: base.started, seconds } }
            : ({ ...base, status: 'running', seconds: carried + seconds } as StageRecord);
        manifest.stages[at] = running(0);
        await save();
        const t0 = performance.now();
        // A run killed in the middle of a long stage leaves its time so far in the manifest (to the last
        // half minute), for the report, instead of the 0 s it started with.
        const timeSoFar = (): void => {
          manifest.stages[at] = running((performance.now() - t0) / 1000);
        };
        const ticking = setInterval(() => {
          timeSoFar();
          save().catch(() => undefined);
        }, RUNNING_SAVE_MS);
        ticking.unref();
        saveOnExit = () => {
          timeSoFar();
          writeManifestNow(runDir, { ...manifest, stages: [...manifest.stages], wall_seconds: (performance.now() - started) / 1000 });
        };
        const ctx: StageContext = {
          recipe,
          runDir,
          workDir: path.join(runDir, 'work', key.slice(0, 16)),
          device,
          ...(threads ? { threads } : {}),
          data: () => Promise.resolve(data),
          graphOf,
          variants,
          slimCommand: o.slimCommand ?? defaultSlimCommand(),
          log,
          progress: o.progress ?? stderrProgress,
        };
        let out: StageOutput<keyof StageResults>;
        try {
          out = await execute(ctx, stage, input).finally(() => {
            clearInterval(ticking);
            saveOnExit = undefined;
          });
        } catch (e) {
          // The manifest (and the report) keep the message as the terminal shows it: in the recipe's keys.
          const placed = inStage(e, recipe, stage);
          const message = placed instanceof SlimError ? placed.parts.problem : e instanceof Error ? e.message : String(e);
          manifest.stages[at] = { ...base, status: 'failed', seconds: carried + (performance.now() - t0) / 1000, error: message } as StageRecord;
          await save();
          throw placed;
        }
        const seconds = carried + (performance.now() - t0) / 1000;
        const storeRecord = async (): Promise<StageRecord> => {
          const done = {
            ...base,
            status: 'done',
            seconds,
            gpu_seconds: out.gpuSeconds,
            cost: (out.gpuSeconds / 3600) * recipe.gpuPricePerHour,
            finished: new Date().toISOString(),
            result: out.result,
            ...(out.model ? { model: await putModel(runDir, out.model) } : {}),
            ...(out.trainable ? { trainable: await putModel(runDir, out.trainable) } : {}),
          } as StageRecord;
          await writeStageRecord(runDir, done);
          return done;
        };
        // A training stage's epoch checkpoints are the only copy of its work until its record is stored:
        // removed after that, never before (a full disk or a kill here would otherwise lose the training).
        record = await storeRecord().catch(async (e: unknown) => {
          const kept = (await readdir(ctx.workDir).catch(() => [])).length > 0;
          if (!(e instanceof SlimError) || !kept) throw e;
          throw new SlimError({ ...e.parts, fix: `${e.parts.fix ? `${e.parts.fix}, then` : 'then'} run the same command again: the stage's checkpoints in ${ctx.workDir} are kept, so it resumes from its last epoch` }, e.kind, { cause: e });
        });
        await rm(ctx.workDir, { recursive: true, force: true });
        ran.push(stage.id);
        log(`  done in ${seconds.toFixed(1)} s${carried > 0 ? ` (${carried.toFixed(1)} s of it in the interrupted run)` : ''}`);
      }
      if (record.model) {
        variants.set(stage.id, { id: stage.id, kind: stage.kind, model: record.model, ...(record.trainable ? { trainable: record.trainable } : {}), ...(input.from ? { from: input.from } : {}) });
        await publishModel(runDir, record.model, stage.id);
        last = stage.id;
      }
      manifest.stages[at] = record;
      await save();
    }
    manifest.complete = true;
    manifest.wall_seconds = (performance.now() - started) / 1000;
    // And those of a stage id that makes none now (a quantize stage become a bench stage, say).
    for (const gone of await unpublishOthers(runDir, new Set(variants.keys()))) log(`removed models/${gone}.onnx: no stage of this recipe makes it (any more)`);
    await rmdir(path.join(runDir, 'work')).catch(() => undefined); // only when no stage left a checkpoint there
    await writeManifest(runDir, manifest);
    return { runDir, manifest, ran, reused };
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onTerminate);
    await unlock();
  }
}

/** A stage's error, placed at its line of the recipe; CLI flags it names become the recipe's keys. */
export function inStage(e: unknown, recipe: Recipe, stage: Stage): unknown {
  if (!(e instanceof SlimError)) return e;
  // Named as the stage's own keys (prune.max_ratio, not structured.max_ratio): the recipe refuses them elsewhere.
  // A stage resumes by running the recipe again; `slim run` has no --resume (a full disk's advice said it).
  const problem = e.message
    .replace(/\b(?:re)?run the same command with --resume/g, 'rerun the same `slim run` command (the stage resumes)')
    .replace(/--([a-z][a-z-]*)/g, (flag, name: string) => (FIELD_HELP[name.replace(/-/g, '_')] ? `${stage.kind}.${name.replace(/-/g, '_')}` : flag));
  return new SlimError({ file: `${recipe.file}:${stage.line}`, where: `stage '${stage.id}' (${stage.kind})`, problem }, e.kind, { cause: e });
}

export interface StageInput {
  from?: string;
  /** For bench: every variant measured. */
  ids?: string[];
}

/** `unscored`: variants a bench stage that names none leaves out (a source for other classes). */
export function inputOf(stage: Stage, last: string | undefined, variants: ReadonlyMap<string, Variant>, unscored: ReadonlySet<string> = new Set()): StageInput {
  switch (stage.kind) {
    case 'bench':
      return { ids: stage.spec.variants ?? [...variants.keys()].filter((id) => !unscored.has(id)) };
    case 'deploy': {
      const from = stage.spec.variant ?? last;
      return from ? { from } : {};
    }
    // A zoo student reads no earlier model: it is not made from the stage before (which would rerun it).
    case 'distill': {
      const from = stage.spec.student ? undefined : (stage.from ?? last);
      return from ? { from } : {};
    }
    default: {
      const from = stage.from ?? last;
      return from ? { from } : {};
    }
  }
}

export function stageDevice(stage: Stage): 'cpu' | 'cuda' | undefined {
  if (stage.kind === 'train' || stage.kind === 'finetune' || stage.kind === 'distill') return stage.spec.device;
  if (stage.kind === 'prune') return stage.spec.finetune?.device;
  if (stage.kind === 'quantize') return stage.spec.qat?.device;
  return undefined;
}

/** What a quantize stage's Conv layout depends on (--reduce-range never takes AMX's: cpu.ts layoutChoice). */
function quantizeLayoutKey(cpu: Int8Cpu, c: KeyContext): Record<string, unknown> {
  return { cpu, ...(cpu === 'amx' ? { layoutThreads: c.threads ?? usableCores() } : {}) };
}

export interface KeyContext {
  device: string;
  data: RunData;
  variants: ReadonlyMap<string, Variant>;
  input: StageInput;
  seed: number;
  model: ModelSpec;
  /** The recipe's name: a bundle is named after it unless its stage names it. */
  recipeName: string;
  threads?: number;
}

/** How bench stages time their variants (in the key: another method measures again). */
const BENCH_TIMING = 'turns of 10 runs, each after the last one\'s threads went idle; per-round ratios';
/** The browser's pages took turns from this version on; before, one page after another. */
const WEB_BENCH_TIMING = `${BENCH_TIMING}; a page per model`;

/**
 * Whether only the stage's scores read the test images (training curves, the QAT top-1), not what
 * makes its model: such stages key on the training set and leave out their eval limits, so changing
 * the test set or an eval limit re-scores in the bench stages instead of training again. A reused
 * record keeps the scores it was made with, and says on how many images (eval_images). Calibration,
 * `method: auto` and the sensitivity scan read training images; `max_drop` picks layers by test top-1.
 */
function scoresOnlyReadTestSet(stage: Stage): boolean {
  // max_drop picks layers by top-1 on the test images; a QAT stage leaves its engine top-1 out of the model.
  if (stage.kind === 'quantize') return stage.spec.max_drop === undefined;
  return TRAINING_KINDS.has(stage.kind);
}

/**
 * Everything the stage's output depends on. The stage id and `from` name are left out (their content
 * is in), except for deploy, whose bundle folder is named after the stage. `legacy`: the key this
 * version gave before scoresOnlyReadTestSet, so run folders made then are still reused.
 */
export function stageKey(stage: Stage, c: KeyContext, o: { legacy?: boolean } = {}): string {
  const { id: _id, from: _from, ...options } = stage.spec as Record<string, unknown>;
  // Written-out defaults key as their absence: `target: host` is the bench default.
  if (stage.kind === 'bench' && options['target'] === 'host') delete options['target'];
  // …and `augment: crop` as the default's `true`.
  if (options['augment'] === 'crop') options['augment'] = true;
  const trainOnly = !o.legacy && scoresOnlyReadTestSet(stage);
  if (trainOnly) {
    delete options['eval_limit'];
    if (options['qat']) {
      const { eval_limit: _limit, ...qat } = options['qat'] as Record<string, unknown>;
      options['qat'] = qat;
    }
  }
  const model = (id: string | undefined): unknown => {
    const v = id ? c.variants.get(id) : undefined;
    return v ? { model: v.model.sha256, trainable: v.trainable?.sha256 } : undefined;
  };
  const teacher = stage.kind === 'distill' ? stage.spec.teacher : stage.kind === 'finetune' ? stage.spec.distill_from : undefined;
  return hashOf({
    pipeline: PIPELINE_VERSION,
    slimkit: VERSION,
    kind: stage.kind,
    options,
    input: model(c.input.from),
    teacher: model(teacher),
    seed: c.seed,
    ...(stage.kind !== 'deploy' ? { data: trainOnly ? { train: c.data.trainSha256 } : c.data.sha256 } : {}),
    ...(trainsOnDevice(stage) ? { device: c.device } : {}),
    // A benchmark belongs to the machine it ran on, and names its variants. `timing`: how they were
    // timed — records from before the variants took turns (with no per-round ratios to compare by)
    // are measured again, not reused.
    ...(stage.kind === 'bench'
      ? {
          // One variant in the browser has no one to take turns with: its record stays good.
          timing: stage.spec.target === 'web' && c.input.ids!.length > 1 ? WEB_BENCH_TIMING : BENCH_TIMING,
          machine: { ...machineInfo(), node: undefined },
          threads: stage.spec.threads ?? c.threads ?? usableCores(),
          variants: c.input.ids!.map((id) => [id, c.variants.get(id)!.model.sha256]),
        }
      : {}),
    // Training from nothing starts from the recipe's model: its architecture, width, classes and seed.
    ...((stage.kind === 'train' || (stage.kind === 'distill' && !stage.spec.student)) && !c.input.from ? { start: c.model } : {}),
    // A bundle is written to deploy/<stage id>/, carries the class names as its labels, and is named
    // after the recipe unless the stage names it (package.json, the systemd unit, its README).
    ...(stage.kind === 'deploy' ? { variantId: c.input.from, stageId: stage.id, labels: c.data.train.classes, ...(stage.spec.name ? {} : { recipeName: c.recipeName }) } : {}),
    // 'auto' lays int8 Conv weights out for this machine's CPU: the resolved choice is part of the output.
    // On AMX each Conv's layout is timed at the run's thread count: another count may choose otherwise.
    ...(stage.kind === 'quantize' ? quantizeLayoutKey(stage.spec.reduce_range ? 'generic' : resolveCpu(stage.spec.cpu), c) : {}),
    // So does round_to: auto, the channel multiple this CPU's convolutions run fastest at.
    ...(stage.kind === 'prune' && stage.spec.round_to === 'auto' ? { roundTo: preferredChannelMultiple() } : {}),
  });
}

/**
 * For a reused stage whose model does not depend on the test images: a note when its own test scores
 * (training curves, a fine-tuning's top-1) were taken on other test images, or on another count
 * (eval_limit), than this run's — they are kept as measured then; bench stages score the current ones.
 */
function staleScoresNote(stage: Stage, stored: StageRecord, data: RunData): string | undefined {
  // A QAT stage's training scores sit under its result's `qat`.
  const result = (stage.kind === 'quantize' ? (stored.result as QuantizeResult | undefined)?.qat : stored.result) as { eval_images?: number; test_top1?: number } | undefined;
  if (!scoresOnlyReadTestSet(stage) || (result?.eval_images === undefined && result?.test_top1 === undefined)) return undefined;
  const then = result.eval_images;
  const limit = stage.kind === 'train' || stage.kind === 'finetune' || stage.kind === 'distill' ? stage.spec.eval_limit : stage.kind === 'quantize' ? stage.spec.qat?.eval_limit : undefined;
  const now = evalImageCount(data, limit);
  const imagesChanged = stored.data_sha256 !== undefined && stored.data_sha256 !== data.sha256;
  const countChanged = then !== undefined && then !== now;
  if (!imagesChanged && !countChanged) return undefined;
  return `  its own test scores were taken on ${then !== undefined ? `${then.toLocaleString('en')} ` : ''}test images of a run with ${imagesChanged ? 'other test images' : `another eval_limit (now ${now.toLocaleString('en')})`} and are kept as measured (its model does not depend on them); bench stages score the current ones`;
}

/**
 * The stage's key and its finished record in the store, if any: under its key, else under the key an
 * earlier version gave it. `move`: what is found under the old key moves to the current one, so the
 * lookup happens once — the record, or the epoch checkpoints of a run of the stage that crashed under
 * the earlier version (its work folder), which the stage then continues from.
 */
/** The stages of `manifest` whose model was made from `id`'s, directly or through others (by their recorded `from`, or the teacher they distilled from). */
/** Removes the bundle an earlier deploy stage `id` wrote (only inside the run's deploy/ folder). */
async function withdrawBundle(runDir: string, previous: RunManifest | undefined, id: string): Promise<void> {
  const record = previous?.stages.find((s) => s?.id === id);
  if (record?.kind !== 'deploy' || !record.result) return;
  const out = path.resolve(runDir, record.result.out);
  const inside = path.relative(path.join(runDir, 'deploy'), out);
  if (!inside || inside.startsWith('..') || path.isAbsolute(inside)) return;
  await rm(out, { recursive: true, force: true });
}

export function madeFrom(manifest: { stages: readonly { id: string; from?: string; result?: unknown }[] } | undefined, id: string): string[] {
  const derived = new Set([id]);
  for (const s of manifest?.stages ?? []) {
    const teacher = (s.result as { teacher?: unknown } | undefined)?.teacher;
    if ((s.from !== undefined && derived.has(s.from)) || (typeof teacher === 'string' && derived.has(teacher))) derived.add(s.id);
  }
  derived.delete(id);
  return [...derived];
}

export async function storedStage(runDir: string, stage: Stage, c: KeyContext, o: { move?: boolean } = {}): Promise<{ key: string; stored?: StageRecord }> {
  const key = stageKey(stage, c);
  const stored = await readStageRecord(runDir, key);
  if (stored) return { key, stored };
  const legacyKey = stageKey(stage, c, { legacy: true });
  if (legacyKey === key) return { key };
  const legacy = await readStageRecord(runDir, legacyKey);
  if (!legacy) {
    // A work folder under the current key already (a crash under this version) is the newer: kept.
    if (o.move) await rename(path.join(runDir, 'work', legacyKey.slice(0, 16)), path.join(runDir, 'work', key.slice(0, 16))).catch(() => undefined);
    return { key };
  }
  // The legacy key held the full data hash: the record's scores are on the current test images.
  const moved = { ...legacy, key, data_sha256: c.data.sha256 } as StageRecord;
  if (o.move) await writeStageRecord(runDir, moved);
  return { key, stored: moved };
}

async function execute(ctx: StageContext, stage: Stage, input: StageInput): Promise<StageOutput<keyof StageResults>> {
  const from = input.from;
  const need = (): string => {
    if (!from) throw usageError(`stage '${stage.id}' has no model to start from`, 'add `from: <stage id>` or an earlier stage that makes a model');
    return from;
  };
  switch (stage.kind) {
    case 'train':
      return runTrain(ctx, stage.spec, from);
    case 'distill':
      return runDistill(ctx, stage.spec, from);
    case 'finetune':
      return runFinetune(ctx, stage.spec, need());
    case 'prune':
      return runPrune(ctx, stage.spec, need());
    case 'quantize':
      return runQuantize(ctx, stage.spec, need());
    case 'bench':
      if (!input.ids?.length) throw usageError(`stage '${stage.id}' has no models to benchmark`, 'put it after a stage that makes a model');
      return runBench(ctx, stage.spec, input.ids);
    case 'deploy':
      return runDeploy(ctx, stage.spec, stage.id, need());
  }
}

/** --rerun must name stages of the recipe. */
export function checkRerun(recipe: Recipe, rerun: readonly string[] | undefined): void {
  const unknown = (rerun ?? []).filter((id) => !recipe.stages.some((s) => s.id === id));
  if (unknown.length) throw usageError(`--rerun names no stage of the recipe: ${unknown.join(', ')}`, `stages: ${recipe.stages.map((s) => s.id).join(', ')}`);
}

/** The recipe's model file (when it starts from one) and its data, checked against each other. */
/** recordedCifar10Dir for a run folder's manifest (used when no --data-dir is given), said when taken. */
export function recordedDataDir(recipe: Recipe, previous: Pick<RunManifest, 'data'> | undefined, log: (line: string) => void): string | undefined {
  const dir = recordedCifar10Dir(recipe.data, previous?.data.dir);
  if (dir) log(`data: CIFAR-10 from ${dir}, where this folder's last run read it (--data-dir or SLIM_DATA_DIR names another)`);
  return dir;
}

export async function recipeInputs(recipe: Recipe, o: { dataDir?: string; log?: (line: string) => void; download?: false }): Promise<{ sourceBytes?: Uint8Array; sourceFile?: string; data: RunData; unscored: ReadonlySet<string> }> {
  let sourceBytes = await readSource(recipe);
  const sourceFile = recipe.model.file ? path.resolve(recipe.baseDir, recipe.model.file) : undefined;
  let sourceGraph = sourceBytes ? decodeModel(sourceBytes, { file: sourceFile!, baseDir: path.dirname(sourceFile!) }) : undefined;
  // model.mean/std are recorded in the source variant itself: every stage and model of the run uses them.
  if (sourceGraph && recipe.model.mean && rawPixelInput(sourceGraph)) {
    throw new SlimError({ file: recipe.file, where: 'model.mean', problem: `${recipe.model.file} takes raw ${rawPixelInput(sourceGraph)!.text} pixels and normalizes them itself`, fix: 'drop model.mean and model.std' }, 'usage');
  }
  if (sourceGraph && recipe.model.mean && recipe.model.std) {
    const stamped = withGivenNormalization(sourceGraph, { mean: recipe.model.mean, std: recipe.model.std });
    if (stamped !== sourceGraph) [sourceGraph, sourceBytes] = [stamped, encodeModel(stamped).model];
  }
  const note = sourceGraph ? defaultNormalizationNote(sourceGraph, recipe.model.file!) : undefined;
  if (note) o.log?.(note);
  // The size a free-H×W file is trained and used at, recorded in it, so every model of the run records it
  // and deploy reads it (a trial's export trained at 32×32 unsaid, and its deploy stage failed at the end).
  // data.resize likewise (else what the file records, else the default for a folder): every model of the
  // run records how its photos were read, as slim train records it (a trial's recipe models recorded none).
  const asked = recipeResize(recipe.data);
  const sourceResize = sourceGraph ? recordedResize(sourceGraph, sourceFile!) : undefined;
  const replaced = replacedResizeNote('data.resize', asked, sourceResize && { ...sourceResize, file: recipe.model.file! });
  if (replaced) o.log?.(replaced);
  if (sourceGraph) {
    // Only when asked: the source variant is the file's bytes otherwise (its training stages record the default).
    const sized = withTrainedResize(sourceAtSize(await sourceWithUndefinedOps(recipe, sourceGraph, sourceFile!, o.log), recipe, o.log), asked);
    if (sized !== sourceGraph) [sourceGraph, sourceBytes] = [sized, encodeModel(sized).model];
  }
  // A source that gets a new head does not name the data's classes: its own names (ImageNet's) label nothing.
  const id = sourceId(recipe.model);
  const getsNewHead = !!id && onlyNewHeadReads(recipe, id);
  checkSourceInput(recipe, sourceGraph);
  checkFreezeNames(recipe, sourceGraph);
  const inputSize = sourceGraph ? modelInputSize(sourceGraph) : recipe.model.zoo ? (recipe.model.image_size ?? zooInputSize(recipe.model.zoo)) : undefined;
  const data = await loadRunData(recipe.data, {
    baseDir: recipe.baseDir, seed: recipe.seed, ...(o.dataDir ? { dataDir: o.dataDir } : {}), ...(inputSize ? { inputSize } : {}),
    recordedResize: asked ? { file: `${recipe.file}'s data.resize`, mode: asked } : sourceResize,
    channels: sourceGraph ? modelChannels(sourceGraph) : (recipe.model.channels ?? 3), classes: sourceGraph && !getsNewHead ? recordedClasses(sourceGraph, sourceFile!) : undefined,
    ...(o.log ? { log: o.log } : {}),
    ...(o.download === false ? { download: false as const } : {}),
  });
  const unscored = checkClassCount(recipe, sourceGraph, data, getsNewHead);
  return { ...(sourceBytes ? { sourceBytes } : {}), ...(sourceFile ? { sourceFile } : {}), data, unscored };
}

/**
 * The source model with the size it is used at recorded (slimkit.input_size): model.image_size, else what
 * it records, else CIFAR-10's 32×32, said. A model of fixed size keeps it; an image_size against it is refused.
 */
function sourceAtSize(graph: Graph, recipe: Recipe, log: ((line: string) => void) | undefined): Graph {
  const asked = recipe.model.image_size;
  const recorded = modelInputSize(graph);
  if (!hasFreeImageSize(graph)) {
    if (asked && recorded && (asked[0] !== recorded[0] || asked[1] !== recorded[1])) {
      throw new SlimError({ file: recipe.file, where: 'model.image_size', problem: `${recipe.model.file} takes ${recorded.join('×')} images (its input is fixed)`, fix: 'drop model.image_size: image folders are resized to the model\'s size' }, 'usage');
    }
    return graph;
  }
  const size = asked ?? recorded;
  if (!size) log?.(`note: ${recipe.model.file}'s height and width are free and it records no size: the run trains and uses it at 32×32 (CIFAR-10's) — set model.image_size [H, W] for another`);
  const [h, w] = size ?? [32, 32];
  if (recorded && recorded[0] === h && recorded[1] === w) return graph;
  const channels = dataInputs(graph)[0]!.shape![imageAxes(graph).c] as number;
  return { ...graph, metadata: { ...graph.metadata, [METADATA_KEYS.inputSize]: JSON.stringify([channels, h, w]) } };
}

async function readSource(recipe: Recipe): Promise<Uint8Array | undefined> {
  if (!recipe.model.file) return undefined;
  const file = path.resolve(recipe.baseDir, recipe.model.file);
  try {
    return await readFile(file);
  } catch (e) {
    throw new SlimError({ file: recipe.file, where: 'model.file', problem: `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, fix: 'give a path relative to the recipe' });
  }
}



/** A recipe `model: { file }` is the first variant: stored like any stage output, keyed by its bytes. */
async function addSource(recipe: Recipe, runDir: string, manifest: RunManifest, bytes: Uint8Array): Promise<Variant> {
  const id = sourceId(recipe.model)!;
  const ref: ArtifactRef = await putBytes(runDir, bytes, 'onnx');
  const file = path.resolve(recipe.baseDir, recipe.model.file!);
  manifest.stages.push({ id, kind: 'source', key: ref.sha256, status: 'done', model: ref, result: { file }, seconds: 0, gpu_seconds: 0, cost: 0, device: 'cpu' });
  return { id, kind: 'source', model: ref };
}

export async function artifactsIntact(runDir: string, record: StageRecord): Promise<boolean> {
  for (const ref of [record.model, record.trainable]) if (ref && !(await verifyArtifact(runDir, ref))) return false;
  if (record.kind === 'deploy' && record.result) {
    // Another stage or run may have rewritten the folder since: the bundle must still hold this model.
    const config = await readFile(path.join(runDir, record.result.out, 'slim.json'), 'utf8').then((t) => JSON.parse(t) as { target?: string; model?: { sha256?: string } }, () => undefined);
    if (!config || config.target !== record.result.target) return false;
    if (!record.result.model_sha256 || config.model?.sha256 !== record.result.model_sha256) return false;
    const model = await readFile(path.join(runDir, record.result.out, MODEL_FILE)).catch(() => undefined);
    if (!model || sha256(model) !== record.result.model_sha256) return false;
  }
  return true;
}

/**
 * A model whose class count differs from the data's would fail mid-run (or score against wrong
 * labels) — unless only train stages that give it a new head read it (`onlyNewHeads`: transfer
 * learning); it is then left out of the bench stages that name no variants. Returns those unscored ids.
 */
function checkClassCount(recipe: Recipe, source: Graph | undefined, data: RunData, onlyNewHeads: boolean): ReadonlySet<string> {
  const dims = source?.outputs[0]?.shape;
  const fromModel = source ? (typeof dims?.[1] === 'number' ? dims[1] : undefined) : recipe.model.classes;
  const classes = data.train.classes.length;
  if (fromModel === undefined || fromModel === classes) return new Set();
  const id = sourceId(recipe.model);
  if (id && onlyNewHeads) return new Set([id]);
  const other = id ? readersOf(recipe, id).find((s) => !givesNewHead(s)) : undefined;
  throw new SlimError({
    file: recipe.file,
    where: source ? 'model.file' : 'model.classes',
    problem: `the model has ${fromModel} classes but the data has ${classes} (${data.train.classes.slice(0, 12).join(', ')}${classes > 12 ? ', …' : ''})${other ? `, and stage '${other.id}' (${other.kind}) reads it as it is` : ''}`,
    fix: source
      ? `a model trained on other classes is read by a train stage with \`new_head: true\` (a fresh classifier for these; \`freeze_backbone: true\` to train only that), or use data with its classes`
      : `set model.classes to ${classes}, or leave it out`,
  }, 'usage');
}

const givesNewHead = (s: Stage): boolean => s.kind === 'train' && !!s.spec.new_head;

/** Whether variant `id` is read, and only by train stages that replace its classifier (its class names then label nothing). */
export function onlyNewHeadReads(recipe: Recipe, id: string): boolean {
  const readers = readersOf(recipe, id);
  return readers.length > 0 && readers.every(givesNewHead);
}

/** The stages that read variant `id` as their input, teacher or listed bench variant. */
function readersOf(recipe: Recipe, id: string): Stage[] {
  let last: string | undefined = sourceId(recipe.model);
  const readers: Stage[] = [];
  for (const stage of recipe.stages) {
    const reads = stage.kind === 'bench' ? (stage.spec.variants ?? [])
      : [stage.kind === 'deploy' ? (stage.spec.variant ?? last) : (stage.from ?? last),
        ...(stage.kind === 'distill' ? [stage.spec.teacher] : []), ...(stage.kind === 'finetune' && stage.spec.distill_from ? [stage.spec.distill_from] : [])];
    if (reads.includes(id)) readers.push(stage);
    if (stage.kind !== 'bench' && stage.kind !== 'deploy') last = stage.id;
  }
  return readers;
}

/**
 * `freeze:` names checked before anything runs (and by --plan), against the layers of the recipe's model
 * — the model file, or the zoo model as built: later stages keep its layer names, so a typo in the last
 * stage does not wait for the first ones to train. The stage itself checks again against its input.
 */
function checkFreezeNames(recipe: Recipe, source: Graph | undefined): void {
  const model = recipe.model;
  if (!recipe.stages.some((s) => (s.kind === 'train' || s.kind === 'finetune') && s.spec.freeze)) return;
  const graph = source ?? (model.zoo ? buildZooModel(model.zoo, { width: model.width ?? 1, classes: model.classes ?? 10, ...(model.channels ? { channels: model.channels } : {}) }) : undefined);
  if (!graph) return;
  recipe.stages.forEach((stage, i) => {
    if ((stage.kind !== 'train' && stage.kind !== 'finetune') || !stage.spec.freeze) return;
    try {
      freezeLayers(graph, stage.spec.freeze, { file: model.file ?? model.zoo!, flag: 'freeze' });
    } catch (e) {
      if (!(e instanceof SlimError)) throw e;
      // Other refusals depend on the stage's own input (a new head, say): the stage says them. The recipe's
      // content is bad input (exit 1), as its other errors are.
      if (/names no layer or parameter/.test(e.parts.problem)) throw new SlimError({ ...e.parts, file: recipe.file, where: `stages[${i}].${stage.kind}.freeze` }, 'input');
    }
  });
}

/**
 * A source that preprocesses raw pixels itself is trained and calibrated as the network it wraps:
 * refused before anything runs when no network can be cut off for a stage that feeds batches.
 */
function checkSourceInput(recipe: Recipe, source: Graph | undefined): void {
  const raw = source ? rawPixelInput(source) : undefined;
  if (!raw) return;
  const feeding = recipe.stages.find((s) => s.kind === 'train' || s.kind === 'finetune' || s.kind === 'distill' || s.kind === 'prune' || (s.kind === 'quantize' && s.spec.mode === 'static'));
  const split = feeding ? splitPixelPreprocessing(source!) : undefined;
  if (!split || !('reason' in split)) return;
  throw new SlimError({
    file: recipe.file,
    where: 'model.file',
    problem: `takes ${raw.text} images and preprocesses them itself, but ${split.reason}; stage '${feeding!.id}' (${feeding!.kind}) feeds the network inside normalized float32 N×C×H×W images`,
    fix: 'use the network without its preprocessing (exported with a float32 N×C×H×W input) as model.file; bench and deploy stages take this model as it is',
  }, 'usage');
}

/** What `slim run` writes at the top of a run folder: --fresh removes these and nothing else. */
const RUN_ENTRIES = new Set([MANIFEST, STAGE_CACHE, MODELS, ARTIFACTS, 'deploy', 'report', 'work', 'recipe.yaml']);

/** One of the run's own entries: those above, and the hidden temp files of its atomic writes. */
const isRunEntry = (entry: string): boolean => RUN_ENTRIES.has(entry) || (entry.startsWith('.') && entry.endsWith('.tmp'));

/**
 * A run goes into a new or empty folder, or one a run made (it has a manifest or a stage cache): a
 * folder of one's own files would be mixed with the run's, and a later --fresh would have cleared it.
 * Hidden files (.DS_Store) do not count.
 */
/** A folder of the user's own files is no run folder: refused before a run writes into it (and by --plan, which says what a run would do). */
export async function checkRunDir(runDir: string): Promise<void> {
  const entries = await readdir(runDir).catch(() => [] as string[]);
  if (entries.includes(MANIFEST) || entries.includes(STAGE_CACHE)) return;
  const foreign = entries.filter((e) => !e.startsWith('.') && !isRunEntry(e));
  if (foreign.length === 0) return;
  const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, … (${foreign.length} in all)` : '');
  throw new SlimError({ file: runDir, problem: `holds files that are not a slimkit run's (${shown}): a run writes its models, stages and report there, mixed with them`, fix: 'pass a new or empty --run-dir' }, 'usage');
}

/** The run's own entries (RUN_ENTRIES), not the lock this run holds: what else is there is kept, and named. */
async function clearRunDir(runDir: string, log: (line: string) => void): Promise<void> {
  const kept: string[] = [];
  for (const entry of await readdir(runDir)) {
    if (isRunEntry(entry)) await rm(path.join(runDir, entry), { recursive: true, force: true });
    else if (entry !== '.lock' && !entry.startsWith('.')) kept.push(entry);
  }
  if (kept.length) log(`--fresh: kept ${kept.join(', ')} in ${runDir} (not written by slim run)`);
}
