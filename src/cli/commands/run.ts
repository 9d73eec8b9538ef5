import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadRecipe } from '../../pipeline/parse.js';
import type { Recipe } from '../../pipeline/recipe.js';
import { runPipeline, type RunOutcome } from '../../pipeline/run.js';
import { planPipeline, type RunPlan } from '../../pipeline/plan.js';
import { usageError } from '../../errors.js';
import { formatBytes, formatCount, formatPercent, table } from '../../report/format.js';
import { STAGE_COLUMNS, cell } from '../../report/columns.js';
import { choseOnTestNote, exactKernelsNote, unrecoveredPruneNote, type RunReport } from '../../report/run-report.js';
import { withdrawReport, writeRunReport, type ReportPaths } from '../../report/write.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { positiveInt, withJson } from '../options.js';
import { checkOutputDir } from '../paths.js';

export interface RunCliOptions extends CommonOptions {
  runDir?: string;
  dataDir?: string;
  device?: 'cpu' | 'cuda';
  threads?: number;
  rerun?: string[];
  fresh?: boolean;
  report: boolean;
}

export const deviceArg = (value: string): 'cpu' | 'cuda' => {
  if (value !== 'cpu' && value !== 'cuda') throw new InvalidArgumentError(`--device must be 'cpu' or 'cuda', got '${value}'`);
  return value;
};

const list = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/** Options shared by `slim run` and `slim demo`. */
export function withRunOptions(cmd: Command): Command {
  return cmd
    .option('--run-dir <dir>', 'where the run lives (default: runs/<recipe name>)')
    .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download to ~/.cache/slimkit)')
    .option('--device <cpu|cuda>', "train on this device (overrides the recipe's device)", deviceArg)
    .option('--threads <n>', 'CPU threads for training and ONNX Runtime (default: the cores this process may use: its CPU affinity and cgroup quota)', positiveInt('--threads'))
    .option('--rerun <stages>', 'run these stages (comma-separated ids) even when the run folder has them', list)
    .option('--fresh', 'delete the run folder first and start over')
    .option('--no-report', 'do not write the report');
}

export interface RecipeRun {
  outcome: RunOutcome;
  report?: { report: RunReport; paths: ReportPaths };
}

/** Runs a recipe (skipping what the run folder already has), then writes the report. */
export async function runRecipe(recipe: Recipe, o: RunCliOptions): Promise<RecipeRun> {
  const outcome = await runPipeline({
    recipe,
    slimCommand: [process.execPath, ...process.execArgv, process.argv[1]!],
    ...(o.runDir ? { runDir: o.runDir } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    ...(o.device ? { device: o.device } : {}),
    ...(o.threads ? { threads: o.threads } : {}),
    ...(o.rerun ? { rerun: o.rerun } : {}),
    ...(o.fresh ? { fresh: true } : {}),
    // The last run's report describes the models this run replaces: withdrawn until this one writes its own.
    beforeFirstRun: async (runDir) => {
      if (await withdrawReport(runDir)) {
        log(`  (the last run's report is withdrawn until this run finishes; slim report writes one of the finished stages any time)`);
      }
    },
  });
  if (!o.report) return { outcome };
  const report = await writeRunReport(outcome.runDir);
  log(`report: ${report.paths.html}`);
  return { outcome, report };
}

export function runSummaryJson(r: RecipeRun): Record<string, unknown> {
  return {
    run_dir: r.outcome.runDir,
    ran: r.outcome.ran,
    reused: r.outcome.reused,
    wall_seconds: r.outcome.manifest.wall_seconds,
    ...(r.report ? { report: r.report.paths, variants: r.report.report.variants, pareto: r.report.report.pareto, stages: r.report.report.stages, totals: r.report.report.totals } : {}),
  };
}

export function renderRunSummary(r: RecipeRun): string {
  const lines: string[] = [];
  const rep = r.report?.report;
  if (rep) {
    const cols = STAGE_COLUMNS.filter((c) => c.key !== 'summary');
    lines.push(table(cols.map((c) => c.header), rep.stages.map((s) => cols.map((c) => cell(c, s)))));
    if (rep.variants.length) {
      const front = new Set(rep.pareto.latency);
      lines.push(
        '',
        table(
          ['variant', 'size', 'gzip', 'params', 'MACs', 'p50 ms', 'img/s', 'top-1'],
          rep.variants.map((v) => [
            `${v.id}${front.has(v.id) ? ' *' : ''}`,
            formatBytes(v.size_bytes),
            formatBytes(v.gzip_bytes),
            formatCount(v.params),
            formatCount(v.macs),
            v.latency_ms.p50.toFixed(3),
            v.throughput_ips.toFixed(0),
            formatPercent(v.top1),
          ]),
        ),
        '* on the Pareto front of top-1 vs batch-1 latency',
      );
      for (const note of [unrecoveredPruneNote(rep), choseOnTestNote(rep), exactKernelsNote(rep)]) if (note) lines.push(`note: ${note}`);
    }
  }
  const m = r.outcome.manifest;
  lines.push('', `${r.outcome.ran.length} stage(s) ran, ${r.outcome.reused.length} reused, in ${m.wall_seconds.toFixed(1)} s (${(m.wall_seconds / 60).toFixed(1)} min)`);
  lines.push(`models: ${path.join(r.outcome.runDir, 'models')}`);
  if (r.report) lines.push(`report: ${r.report.paths.html}`);
  return lines.join('\n');
}

function renderPlan(plan: RunPlan): string {
  const runs = plan.stages.filter((s) => s.action === 'run');
  return [
    `plan for ${plan.run_dir}:`,
    table(['stage', 'kind', 'from', 'would', 'why', 'took last time'], plan.stages.map((s) => [s.id, s.kind, s.from ?? '', s.action, s.reason, s.last_seconds !== undefined ? `${s.last_seconds.toFixed(1)} s` : ''])),
    '',
    runs.length
      ? `${runs.length} stage(s) would run${plan.known_seconds > 0 ? ` (${(plan.known_seconds / 60).toFixed(1)} min last time, for those with a time)` : ''}; nothing was run or written`
      : 'every stage would be reused; nothing was run or written',
  ].join('\n');
}

export function registerRun(program: Command): void {
  withJson(
    withRunOptions(
      program
        .command('run')
        .description('run a recipe (train → distill → prune → fine-tune → quantize → bench → deploy); finished stages are reused')
        .argument('<recipe>', 'a recipe .yaml file (see recipes/demo.yaml)')
        .option('--plan', 'run nothing: say which stages the run folder already holds and which would run, and why'),
    ),
  )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  slim run recipes/demo.yaml                      # runs/demo: models/, report/report.html',
        '  slim run recipes/demo.yaml --rerun bench        # measure again, reuse everything else',
        '  slim run recipes/demo.yaml --plan               # what would run after an edit, before it runs',
        '  slim run recipes/full-gpu.yaml --device cuda',
        '',
        'A rerun skips every stage whose inputs and options have not changed; after a crash it resumes at',
        'the stage that did not finish (training resumes from its last finished epoch).',
      ].join('\n'),
    )
    .action(async (file: string, options: RunCliOptions & { plan?: boolean }) => {
      if (options.runDir) checkOutputDir(options.runDir, '--run-dir', { parents: true });
      const recipe = await loadRecipe(file);
      if (options.plan) {
        if (options.fresh) throw usageError('--plan and --fresh: a fresh run runs every stage', 'drop one of the two');
        const plan = await planPipeline({
          recipe, log,
          ...(options.runDir ? { runDir: options.runDir } : {}), ...(options.dataDir ? { dataDir: options.dataDir } : {}),
          ...(options.device ? { device: options.device } : {}), ...(options.threads ? { threads: options.threads } : {}), ...(options.rerun ? { rerun: options.rerun } : {}),
        });
        printResult(options, plan, () => renderPlan(plan));
        return;
      }
      const result = await runRecipe(recipe, options);
      printResult(options, runSummaryJson(result), () => renderRunSummary(result));
    });
}
