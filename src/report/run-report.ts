/**
 * A run manifest → the report's one data document (report.json). The Markdown and HTML pages are
 * renderings of this object and nothing else, so every number they show is a number in the JSON.
 */
import type { EpochJson } from './json-records.js';
import type {
  BenchResult,
  DeployResultRecord,
  MachineInfo,
  PruneResult,
  QuantizeResult,
  RunManifest,
  StageRecord,
  VariantBench,
} from '../pipeline/manifest.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runAgainCommand, runIsLive } from '../pipeline/manifest.js';
import { paretoFront } from './pareto.js';
import { comparableLatencies, latencyTied } from './latency-ratio.js';
import { formatCount, formatPercent, formatPointChange } from './format.js';

export interface StageRow {
  id: string;
  kind: string;
  status: string;
  /** Taken from the store in the latest invocation (its seconds are those of the run that made it). */
  reused: boolean;
  from?: string;
  device: string;
  seconds: number;
  gpu_seconds: number;
  cost: number;
  /** One line: what the stage did, in numbers. */
  summary: string;
  error?: string;
}

export interface RunReport {
  version: 1;
  name: string;
  description?: string;
  run_dir: string;
  generated: string;
  machine: MachineInfo;
  data: RunManifest['data'];
  complete: boolean;
  /** Wall time of the latest `slim run` / `slim demo` invocation. */
  wall_seconds: number;
  gpu_price_per_hour: number;
  /** The bench stage the tables, the Pareto fronts and `slim recommend` use (see chooseBench). */
  /** rerun_command: `slim run` of this run folder with --rerun of this stage, which measures again. */
  bench?: Omit<BenchResult, 'variants'> & { stage: string; rerun_command: string };
  /** The run's other bench stages (another target): their batch-1 p50 per variant. */
  other_benches: { stage: string; target: string; runtime?: string; p50_ms: Record<string, number> }[];
  /** Every benchmarked variant: `slim bench`'s numbers plus top-5 and per-class accuracy. */
  variants: VariantBench[];
  /**
   * Variants whose file in the run folder is no longer the one measured (replaced by hand, or by another
   * run): the figures are the measured file's. Absent in reports made before it was checked.
   */
  changed_files?: string[];
  /** Ids on the Pareto front of top-1 vs batch-1 p50 latency, and of top-1 vs file size. */
  pareto: { latency: string[]; size: string[] };
  stages: StageRow[];
  /** Sums over the stages (each counted with the seconds of the run that made it). */
  totals: { seconds: number; gpu_seconds: number; cost: number };
  /**
   * One entry per line of the training curves: `start` is the model's score before its first step (a model
   * trained further), `cuts` a prune stage's later cuts (its fine-tunings numbered on from the first's epochs).
   */
  training: { stage: string; kind: string; teacher?: string; eval_images: number; history: EpochJson[]; start?: StartScore; cuts?: (StartScore & { epoch: number })[] }[];
  sensitivity?: { stage: string; from?: string; layers: NonNullable<QuantizeResult['sensitivity']> };
  prune: (PruneResult & { stage: string; from?: string })[];
  quantize: (Omit<QuantizeResult, 'sensitivity'> & { stage: string; from?: string })[];
  deploy: (DeployResultRecord & { stage: string })[];
}

/** Variants whose file in `runDir` is missing or has other bytes than the ones measured (by sha256). */
function changedFiles(runDir: string, variants: readonly VariantBench[]): string[] {
  return variants.filter((v) => {
    try {
      return createHash('sha256').update(readFileSync(path.join(runDir, v.file))).digest('hex') !== v.sha256;
    } catch {
      return true;
    }
  }).map((v) => v.id);
}

/** The warning for changed_files, one line (report, recommend). */
export function changedFilesNote(r: Pick<RunReport, 'changed_files' | 'variants' | 'bench'>): string | undefined {
  const changed = r.variants.filter((v) => r.changed_files?.includes(v.id));
  if (changed.length === 0) return undefined;
  return `${changed.map((v) => v.file).join(', ')} ${changed.length === 1 ? 'is' : 'are'} not the file${changed.length === 1 ? '' : 's'} measured (replaced or removed since): the figures are the measured file's — rerun the bench stage (${r.bench?.rerun_command ?? 'slim run --rerun <bench stage>'}) to measure what is there now`;
}

/**
 * Int8 variants scored on an x64 CPU whose int8 sums saturate: their top-1 in the table is this CPU's,
 * below what the same model scores elsewhere (the demo's int8 model: 1.8 pt on an AVX2-only EPYC). What
 * they score on exact kernels, one line (report, run, recommend).
 */
export function exactKernelsNote(r: Pick<RunReport, 'variants'>): string | undefined {
  const int8 = r.variants.filter((v) => v.top1_exact_kernels !== undefined);
  if (int8.length === 0) return undefined;
  const each = int8.map((v) => `${v.id} ${pct(v.top1_exact_kernels!)} (${pct(v.top1)} here)`).join(', ');
  return `${int8.map((v) => v.id).join(', ')}: top-1 measured on this CPU, x64 without VNNI, where ONNX Runtime adds int8 products in 16 bits and they saturate. On exact int8 kernels (arm64, x64 with VNNI or AMX, the browser) ${int8.length === 1 ? 'it scores' : 'they score'} ${each}, scored here with the weights as uint8; for CPUs like this one, quantize with cpu: avx2 (exact, slower kernels) or reduce_range: true (7-bit weights).`;
}

/** A drop in top-1 (points) that a pruned model not fine-tuned is warned about: above a small test set's noise. */
const UNRECOVERED_DROP_PT = 3;

/**
 * Prune stages without fine-tuning whose model lost more than UNRECOVERED_DROP_PT of top-1 against
 * the model they pruned, and that no finetune stage of the recipe starts from: what a few epochs of
 * fine-tuning usually win back, one line (report, run). A one-shot cut left as the run's answer went
 * unsaid (a trial: 27 % against 69 %).
 */
export function unrecoveredPruneNote(r: Pick<RunReport, 'prune' | 'variants' | 'stages'>): string | undefined {
  const top1 = (id: string | undefined): number | undefined => r.variants.find((v) => v.id === id)?.top1;
  const lost = r.prune.flatMap((p) => {
    const [after, before] = [top1(p.stage), top1(p.from)];
    if (p.finetune_epochs > 0 || after === undefined || before === undefined) return [];
    if ((before - after) * 100 <= UNRECOVERED_DROP_PT) return [];
    if (r.stages.some((s) => s.kind === 'finetune' && s.from === p.stage)) return [];
    return [`${p.stage} scores ${pct(after)} against ${pct(before)} for ${p.from} (${formatPointChange((after - before) * 100)})`];
  });
  if (lost.length === 0) return undefined;
  return `${lost.join('; ')}: pruned without fine-tuning — add \`finetune: { epochs: N }\` to ${lost.length === 1 ? 'its prune stage' : 'their prune stages'} (or a finetune stage from ${lost.length === 1 ? 'it' : 'them'}); a few epochs usually win most of it back.`;
}

/**
 * Variants a quantize stage's max_drop made: it chose the layers they keep float on every other one of
 * its test images, which the bench scores too, so their top-1 in the table is partly on images that
 * chose them. What the stage measured on the images it did not choose on, one line (report, run, recommend).
 */
export function choseOnTestNote(r: Pick<RunReport, 'quantize' | 'variants'>): string | undefined {
  const chosen = r.quantize.filter((q) => q.mixed_precision?.held_out && r.variants.some((v) => v.id === q.stage));
  if (chosen.length === 0) return undefined;
  const each = chosen.map((q) => {
    const m = q.mixed_precision!;
    const held = m.held_out!;
    const drop = (held.baseline_top1 - held.top1) * 100;
    return `${q.stage} chose the ${m.float_layers.length} layer(s) it keeps float on ${m.chosen_on_images !== undefined ? `${m.chosen_on_images.toLocaleString('en')} ` : ''}test images (every other one), so its top-1 here is partly on images it chose on; on the ${held.images.toLocaleString('en')} it did not choose on it scored ${pct(held.top1)} against ${pct(held.baseline_top1)} for the model it quantized (drop ${drop.toFixed(2)} pt)`;
  });
  return `${each.join('; ')}.`;
}

/**
 * The bench stage that speaks for the run: the last one timed on `target` (default: the host, where a
 * device deployment runs native code), else — with no target asked for — the last one of any target.
 */
function chooseBench(benches: StageRecord[], target: string | undefined): StageRecord | undefined {
  const on = (t: string): StageRecord | undefined => benches.findLast((s) => ((s.result as BenchResult).target ?? 'host') === t);
  return target ? on(target) : on('host') ?? benches.at(-1);
}

/** A score before the first step, as the curves take it (a stage records no test loss for it). */
type StartScore = { test_top1: number; test_loss: number | null };

const startOf = (top1: number | undefined): { start?: StartScore } => (top1 !== undefined ? { start: { test_top1: top1, test_loss: null } } : {});

/**
 * An iterative prune's fine-tunings as one run, as `slim curves` draws `slim prune --steps`'s log: epochs
 * numbered on from the first fine-tuning's, each later cut's score at the epoch it was made.
 */
function pruneCurve(histories: readonly EpochJson[][], starts: readonly (number | null)[]): { history: EpochJson[]; start?: StartScore; cuts?: (StartScore & { epoch: number })[] } {
  const history: EpochJson[] = [];
  const cuts: (StartScore & { epoch: number })[] = [];
  for (const [k, epochs] of histories.entries()) {
    const before = history.length;
    const start = starts[k];
    if (k > 0 && typeof start === 'number') cuts.push({ epoch: before, test_top1: start, test_loss: null });
    history.push(...epochs.map((e) => ({ ...e, epoch: e.epoch + before })));
  }
  return { history, ...startOf(starts[0] ?? undefined), ...(cuts.length ? { cuts } : {}) };
}

export function buildRunReport(manifest: RunManifest, runDir: string, options: { target?: string } = {}): RunReport {
  const stages = manifest.stages.filter((s): s is StageRecord => Boolean(s));
  const benches = stages.filter((s) => s.kind === 'bench' && s.status === 'done' && s.result);
  const chosen = chooseBench(benches, options.target);
  const bench = chosen?.result as BenchResult | undefined;
  const otherBenches = benches.filter((s) => s !== chosen).map((s) => {
    const b = s.result as BenchResult;
    return { stage: s.id, target: b.target ?? 'host', ...(b.runtime ? { runtime: b.runtime } : {}), p50_ms: Object.fromEntries(b.variants.map((v) => [v.id, v.latency_ms.p50])) };
  });
  const variants = bench?.variants ?? [];
  const latency = comparableLatencies(variants);
  const front = (cost: (v: VariantBench) => number, tied?: (a: VariantBench, b: VariantBench) => boolean): string[] =>
    paretoFront(variants.map((v) => ({ id: v.id, gain: v.top1, cost: cost(v), v })), tied && ((a, b) => tied(a.v, b.v)));
  const training: RunReport['training'] = [];
  const prune: RunReport['prune'] = [];
  const quantize: RunReport['quantize'] = [];
  const deploy: RunReport['deploy'] = [];
  let sensitivity: RunReport['sensitivity'];
  for (const s of stages) {
    if (s.status !== 'done' || !s.result) continue;
    const from = s.from ? { from: s.from } : {};
    switch (s.kind) {
      case 'train':
      case 'finetune':
      case 'distill':
        training.push({ stage: s.id, kind: s.kind, eval_images: s.result.eval_images, history: s.result.history, ...(s.result.teacher ? { teacher: s.result.teacher } : {}), ...startOf(s.result.start_top1) });
        break;
      case 'prune': {
        const { finetune_history: histories, finetune_start_top1: starts, finetune_eval_images: evalImages, ...rest } = s.result;
        prune.push({ ...rest, stage: s.id, ...from });
        // Its fine-tunings' epochs, beside the training stages': one line, dropping at each later cut.
        if (histories?.length) training.push({ stage: `${s.id} (fine-tune)`, kind: 'finetune', eval_images: evalImages ?? 0, ...pruneCurve(histories, starts ?? []) });
        break;
      }
      case 'quantize': {
        const { sensitivity: layers, ...rest } = s.result;
        quantize.push({ ...rest, stage: s.id, ...from });
        if (rest.qat) training.push({ stage: `${s.id} (QAT)`, kind: 'qat', eval_images: rest.qat.eval_images, history: rest.qat.history, ...startOf(rest.qat.start_top1) });
        if (layers?.length && !sensitivity) sensitivity = { stage: s.id, ...from, layers };
        break;
      }
      case 'deploy':
        deploy.push({ ...s.result, stage: s.id });
        break;
      default:
        break;
    }
  }
  // A stage left 'running' by a run that no longer lives was interrupted (killed, Ctrl-C): a rerun resumes it.
  const live = runIsLive(runDir);
  const after = (seconds: number): string => (seconds > 0 ? ` after ${seconds.toFixed(seconds < 10 ? 1 : 0)} s or more` : '');
  const rows = stages.map((s): StageRow => {
    const row = stageRow(s);
    if (s.status === 'running' && !live) {
      const training = ['train', 'finetune', 'distill', 'prune', 'quantize'].includes(s.kind) ? ' (training from its last finished epoch)' : '';
      return { ...row, status: 'interrupted', summary: `interrupted${after(s.seconds)} — \`slim run\` of the same recipe resumes it${training}` };
    }
    // A bench rerun under way or stopped: the figures are still the earlier run's (pipeline/run.ts).
    if (s.rerun) return { ...row, summary: `${row.summary} — ${live ? 'a --rerun is under way' : `a --rerun was interrupted${after(s.rerun.seconds)}`}: these are the earlier figures` };
    return row;
  });
  return {
    version: 1,
    name: manifest.name,
    ...(manifest.description ? { description: manifest.description } : {}),
    run_dir: runDir,
    generated: new Date().toISOString(),
    machine: manifest.machine,
    data: manifest.data,
    complete: manifest.complete,
    wall_seconds: manifest.wall_seconds,
    gpu_price_per_hour: manifest.gpu_price_per_hour,
    other_benches: otherBenches,
    ...(bench ? { bench: { stage: chosen!.id, threads: bench.threads, runs: bench.runs, ...(bench.warmup_runs !== undefined ? { warmup_runs: bench.warmup_runs } : {}), ...(bench.image_size ? { image_size: bench.image_size } : {}), batch: bench.batch, ...(bench.target ? { target: bench.target } : {}), ...(bench.runtime ? { runtime: bench.runtime } : {}), ...(bench.timed_in_turns ? { timed_in_turns: true } : {}), ...(bench.other_load_cores !== undefined ? { other_load_cores: bench.other_load_cores, cores: bench.cores } : {}), eval_data: bench.eval_data, rerun_command: runAgainCommand(manifest, runDir, ['--rerun', chosen!.id]) } } : {}),
    variants,
    changed_files: changedFiles(runDir, variants),
    // Latency per round of turns where the bench took them (latency-ratio.ts), as recommend ranks it.
    // A less accurate variant whose timing cannot be told from a more accurate one's is not on the latency
    // front (a trial saw two identical architectures both starred, 3 % apart in time).
    pareto: { latency: front((v) => latency.get(v)!, latencyTied), size: front((v) => v.size_bytes) },
    stages: rows,
    totals: {
      seconds: rows.reduce((a, r) => a + r.seconds, 0),
      gpu_seconds: rows.reduce((a, r) => a + r.gpu_seconds, 0),
      cost: rows.reduce((a, r) => a + r.cost, 0),
    },
    training,
    ...(sensitivity ? { sensitivity } : {}),
    prune,
    quantize,
    deploy,
  };
}

function stageRow(s: StageRecord): StageRow {
  return {
    id: s.id,
    kind: s.kind,
    status: s.status,
    reused: Boolean(s.reused),
    ...(s.from ? { from: s.from } : {}),
    device: s.device,
    seconds: s.seconds,
    gpu_seconds: s.gpu_seconds,
    cost: s.cost,
    summary: summarize(s),
    ...(s.error ? { error: s.error } : {}),
  };
}

const pct = (v: number): string => formatPercent(v);
const count = formatCount;

/** What the run said about a training result (a note or a warning), after its summary. */
const notesOf = (r: { notes?: string[] }): string => (r.notes?.length ? ` — ${r.notes.join('; ')}` : '');

function summarize(s: StageRecord): string {
  if (s.status === 'failed') return `failed: ${s.error ?? 'unknown error'}`;
  if (s.status !== 'done' || !s.result) return s.status;
  switch (s.kind) {
    case 'source':
      return `model file ${s.result.file}`;
    case 'train':
    case 'finetune':
    case 'distill': {
      const r = s.result;
      return `${r.history.length} epoch${r.history.length === 1 ? '' : 's'} on ${r.train_images.toLocaleString('en')} images${r.teacher ? ` (teacher ${r.teacher})` : ''}: test top-1 ${pct(r.test_top1)} on ${r.eval_images.toLocaleString('en')} images${notesOf(r)}`;
    }
    case 'prune': {
      const r = s.result;
      const what = r.mode === 'structured' ? `MACs ${count(r.macs_before)} → ${count(r.macs_after)}, params ${count(r.params_before)} → ${count(r.params_after)}` : `sparsity ${pct(r.sparsity ?? 0)}`;
      return `${r.mode}: ${what}${r.finetune_epochs ? `, ${r.finetune_epochs} fine-tuning epoch(s)` : ''}${r.test_top1 !== undefined ? `, test top-1 ${pct(r.test_top1)}` : ''}`;
    }
    case 'quantize': {
      const r = s.result;
      if (r.mode !== 'static') return r.mode;
      const mixed = r.mixed_precision;
      return `static int8, ${r.method} calibration on ${r.samples} images, ${r.quantized_nodes} nodes quantized${r.float_nodes?.length ? `, ${r.float_nodes.length} left float` : ''}${mixed ? `; mixed precision kept ${mixed.float_layers.length} layer(s) float${mixed.held_out ? ` (top-1 drop ${((mixed.held_out.baseline_top1 - mixed.held_out.top1) * 100).toFixed(2)} pt on the ${mixed.held_out.images.toLocaleString('en')} test images it did not choose on)` : ''}` : ''}${r.qat ? `; ${r.qat.history.length} epoch(s) of quantization-aware training: engine top-1 ${pct(r.qat.test_top1)} (fake-quantized in float; the bench scores the written int8 model)${notesOf(r.qat)}` : ''}`;
    }
    case 'bench': {
      const r = s.result;
      return `${r.variants.length} models, ${r.threads} thread(s), ${r.runs} batch-1 runs each; top-1 on ${r.eval_data}`;
    }
    case 'deploy': {
      const r = s.result;
      return `${r.target} bundle of ${r.variant}: ${r.files} files, ${r.total_bytes.toLocaleString('en')} bytes (${r.out})`;
    }
  }
}
