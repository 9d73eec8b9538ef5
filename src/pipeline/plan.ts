/**
 * `slim run --plan`: what a run of the recipe would do in its run folder — which stages the store
 * already holds (reused) and which would run, with the reason and what they took last time — without
 * running, locking or writing anything. An edit that would retrain for hours shows before it does.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { readManifest, runIsLive, type StageRecord } from './manifest.js';
import { usableCores } from '../util/cpu-quota.js';
import { sourceId, type Recipe, type Stage } from './recipe.js';
import { parseRecipe } from './parse.js';
import { artifactsIntact, checkRerun, checkRunDir, defaultRunDir, inputOf, recipeInputs, recordedDataDir, stageDevice, storedStage, trainsOnDevice, type StageInput } from './run.js';
import type { Variant } from './stages/context.js';
import { sha256 } from './store.js';

export interface PlannedStage {
  id: string;
  kind: string;
  from?: string;
  action: 'reuse' | 'run';
  reason: string;
  /** Seconds the stage took when it last ran in this folder (the stored record, else the manifest's). */
  last_seconds?: number;
}

export interface RunPlan {
  run_dir: string;
  stages: PlannedStage[];
  /** Sum of last_seconds over the stages that would run (those with a known time). */
  known_seconds: number;
}

export async function planPipeline(o: { recipe: Recipe; runDir?: string; dataDir?: string; device?: 'cpu' | 'cuda'; threads?: number; rerun?: readonly string[]; log?: (line: string) => void }): Promise<RunPlan> {
  const { recipe } = o;
  checkRerun(recipe, o.rerun);
  const runDir = path.resolve(o.runDir ?? defaultRunDir(recipe));
  // What the run would refuse, the plan refuses (it said 5 stages would run into a folder of one's notes).
  await checkRunDir(runDir);
  // A run under way there changes the store as it goes: this plan is of the folder as it is now.
  if (runIsLive(runDir)) o.log?.(`note: another slim run is using ${runDir} now: this plan is of the folder as it is, and a run started before that one ends is refused`);
  // A plan runs nothing: it does not download CIFAR-10 (170 MB) either.
  const previous = await readManifest(runDir).catch(() => undefined);
  const dataDir = o.dataDir ?? recordedDataDir(recipe, previous, o.log ?? (() => {}));
  const { sourceBytes, data, unscored } = await recipeInputs(recipe, { ...(dataDir ? { dataDir } : {}), ...(o.log ? { log: o.log } : {}), download: false });
  const earlierRecipe = previousRecipe(previous?.recipe);

  // Variants whose bytes are known (stored, or the source file); a stage that would run makes new ones.
  const variants = new Map<string, Variant>();
  const remade = new Set<string>();
  if (sourceBytes) {
    const id = sourceId(recipe.model)!;
    variants.set(id, { id, kind: 'source', model: { sha256: sha256(sourceBytes), path: '', bytes: sourceBytes.length } });
  }
  const stages: PlannedStage[] = [];
  let last = sourceBytes ? sourceId(recipe.model) : undefined;
  for (const stage of recipe.stages) {
    // inputOf names variants by id: a remade one has no known bytes, so the stage cannot be looked up.
    const input: StageInput = inputOf(stage, last, new Map([...variants, ...[...remade].map((id) => [id, undefined as unknown as Variant] as const)]), unscored);
    const reads = [...(input.from ? [input.from] : []), ...(input.ids ?? []), ...(stage.kind === 'distill' && stage.spec.teacher ? [stage.spec.teacher] : []), ...(stage.kind === 'finetune' && stage.spec.distill_from ? [stage.spec.distill_from] : [])];
    const lastTime = previous?.stages.find((s) => s.id === stage.id && s.status === 'done')?.seconds; // a reused record keeps the seconds of the run that made it
    const planned = (action: PlannedStage['action'], reason: string, seconds?: number): PlannedStage => ({
      id: stage.id, kind: stage.kind, ...(input.from ? { from: input.from } : {}), action, reason, ...(seconds !== undefined ? { last_seconds: seconds } : lastTime !== undefined ? { last_seconds: lastTime } : {}),
    });
    const makesModel = stage.kind !== 'bench' && stage.kind !== 'deploy';
    const changed = reads.filter((id) => remade.has(id));
    if (o.rerun?.includes(stage.id)) {
      stages.push(planned('run', '--rerun names it'));
    } else if (changed.length) {
      // Its own edits too, where the recipe shows them: the rerun would not be reused after all.
      const own = lastTime !== undefined ? changedSince(earlierRecipe, recipe, stage) : undefined;
      const also = own?.startsWith('the recipe changed') ? `; ${own.replace('the recipe changed since it last ran', 'and its own recipe keys changed')}` : ' (reused after all if that makes the same bytes)';
      stages.push(planned('run', `it reads ${changed.map((id) => `'${id}'`).join(', ')}, which ${changed.length > 1 ? 'run' : 'runs'} again${also}`));
    } else {
      const device = stageDevice(stage) ?? o.device ?? recipe.device;
      const threads = o.threads ?? recipe.threads;
      const { key, stored } = await storedStage(runDir, stage, { device, data, variants, input, seed: recipe.seed, model: recipe.model, recipeName: recipe.name, ...(threads ? { threads } : {}) });
      if (stored && (await artifactsIntact(runDir, stored))) {
        stages.push(planned('reuse', 'the store holds it', stored.seconds));
        if (stored.model) variants.set(stage.id, { id: stage.id, kind: stage.kind, model: stored.model, ...(stored.trainable ? { trainable: stored.trainable } : {}) });
        if (makesModel) last = stage.id;
        continue;
      }
      const before = previous?.stages.find((st) => st.id === stage.id);
      // A bundle folder is the deploy stage's id's, shared by the recipes run in this folder: another's run replaces it.
      const why = stored ? (stage.kind === 'deploy' ? `its bundle (deploy/${stage.id}) is not the one it made: changed or removed since, or written by another recipe's deploy stage of that id` : 'its stored output is damaged or gone')
        : before?.status === 'failed' ? `it failed last time (${before.error ?? 'see the manifest'})`
          : before?.status === 'running'
            // Its checkpoints are kept under the stage's key: an edit since (another key) starts it over.
            ? holdsCheckpoint(path.join(runDir, 'work', key.slice(0, 16)))
              ? 'it was interrupted last time (training resumes from its last finished epoch)'
              : 'it was interrupted last time; it starts over (its options, its input or the data changed since, or it had kept no epoch)'
            : lastTime !== undefined ? withInvocationChanges(changedSince(earlierRecipe, recipe, stage), before, stage, { device, threads }) : 'it has not run in this folder';
      stages.push(planned('run', why));
    }
    if (makesModel) {
      remade.add(stage.id);
      variants.delete(stage.id);
      last = stage.id;
    }
  }
  const known_seconds = stages.filter((s) => s.action === 'run').reduce((t, s) => t + (s.last_seconds ?? 0), 0);
  return { run_dir: runDir, stages, known_seconds };
}

/** The recipe of the run that last wrote the folder, as its manifest keeps it; undefined when it no longer parses. */
function previousRecipe(kept: { file: string; text: string } | undefined): Recipe | undefined {
  try {
    return kept ? parseRecipe(kept.text, kept.file) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why a stage that ran before runs again, in the recipe's words where the recipe says it: its own keys
 * and the recipe-wide settings it depends on, then vs now (`prune.structured.target_macs: 0.5 → 0.6`).
 * What the recipe does not show (an input model's bytes, another slimkit) keeps the general reason.
 */
const GENERAL_REASON = 'its options, its input or the data changed since it last ran';

export function changedSince(before: Recipe | undefined, now: Recipe, stage: Stage): string {
  const general = GENERAL_REASON;
  if (!before) return general;
  const old = before.stages.find((s) => s.id === stage.id);
  const changes = [
    ...(old && old.kind !== stage.kind ? [`it was a ${old.kind} stage`] : old ? differences(stage.kind, old.spec, stage.spec) : []),
    ...(stage.kind !== 'deploy' ? differences('data', before.data, now.data) : []),
    ...(before.seed !== now.seed ? [`seed: ${before.seed} → ${now.seed}`] : []),
    ...differences('model', before.model, now.model),
  ];
  if (changes.length === 0) return general;
  const shown = changes.slice(0, 3).join(', ') + (changes.length > 3 ? ` and ${changes.length - 3} more` : '');
  return `the recipe changed since it last ran: ${shown}`;
}

/**
 * The command-line settings a stage's key holds that differ from the run that made its record: the
 * device it trains on, the threads a bench times with (--device, --threads; the recipe does not show them).
 */
function withInvocationChanges(why: string, before: StageRecord | undefined, stage: Stage, now: { device: 'cpu' | 'cuda'; threads: number | undefined }): string {
  const changes: string[] = [];
  if (before && trainsOnDevice(stage) && before.device !== now.device) changes.push(`device: ${before.device} → ${now.device}`);
  const timedWith = before?.result && 'threads' in before.result && typeof before.result.threads === 'number' ? before.result.threads : undefined;
  if (stage.kind === 'bench' && timedWith !== undefined) {
    const threads = now.threads ?? usableCores();
    const timing = stage.spec.threads ?? (stage.spec.target === 'web' ? Math.min(4, threads) : threads);
    if (timing !== timedWith) changes.push(`threads: ${timedWith} → ${timing}`);
  }
  if (changes.length === 0) return why;
  const said = `the command line changed since it last ran: ${changes.join(', ')}`;
  return why === GENERAL_REASON ? said : `${why}; ${said.replace('since it last ran: ', '')}`;
}

/** `prefix.key: then → now` for every leaf that differs (arrays compared whole). */
function differences(prefix: string, then: unknown, now: unknown): string[] {
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isRecord(then) && isRecord(now)) {
    return [...new Set([...Object.keys(then), ...Object.keys(now)])].flatMap((k) => differences(`${prefix}.${k}`, then[k], now[k]));
  }
  const show = (v: unknown): string => (v === undefined ? 'unset' : JSON.stringify(v));
  return JSON.stringify(then) === JSON.stringify(now) ? [] : [`${prefix}: ${show(then)} → ${show(now)}`];
}

/** Whether a stage's work folder holds a checkpoint: its own, or one of its fine-tunings' or phases'. */
function holdsCheckpoint(dir: string): boolean {
  if (existsSync(path.join(dir, 'last.ckpt'))) return true;
  try {
    return readdirSync(dir).some((name) => existsSync(path.join(dir, name, 'last.ckpt')));
  } catch {
    return false;
  }
}
