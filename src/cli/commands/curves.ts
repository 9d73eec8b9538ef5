import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { inputError, usageError } from '../../errors.js';
import { writeFileAtomic } from '../../onnx/io.js';
import { renderSvg, trainingCurvesSpec } from '../../report/charts.js';
import { chartFile } from '../../report/html.js';
import { formatPercent, table } from '../../report/format.js';
import { readTrainingLog, type LoggedRun } from '../../report/training-log.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { withJson } from '../options.js';
import { checkOutputFile } from '../paths.js';

interface CurvesCliOptions extends CommonOptions {
  out?: string;
}

export function registerCurves(program: Command): void {
  withJson(
    program
      .command('curves')
      .description('draw test top-1 and training loss per epoch from training logs (--log of train, distill, quantize --qat, prune --finetune) as one SVG, one line per run; a fine-tune starts at epoch 0, its model scored before training')
      .argument('<log...>', 'JSON-lines logs; several runs (or runs appended to one log) are drawn together')
      .option('-o, --out <file.svg>', 'the SVG to write (default: the first log with .svg)'),
  )
    .addHelpText('after', '\nExamples:\n  slim curves train.jsonl\n  slim curves plain.jsonl distilled.jsonl -o kd-vs-plain.svg')
    .action(async (files: string[], options: CurvesCliOptions) => {
      // A slim run folder has its curves drawn already (its stages log no file of their own).
      const runFolder = files.find((f) => existsSync(path.join(f, 'manifest.json')));
      if (runFolder) throw runFolderCurves(runFolder);
      const output = options.out ?? `${files[0]!.replace(/\.jsonl?$/, '')}.svg`;
      if (!output.toLowerCase().endsWith('.svg')) throw usageError(`-o writes an SVG file, got '${output}'`, 'name it something.svg');
      checkOutputFile(output, '-o', files);
      const runs: LoggedRun[] = [];
      const seen = new Set<string>();
      for (const file of files) {
        if (seen.has(path.resolve(file))) {
          log(`note: ${file} is named twice: drawn once`);
          continue;
        }
        seen.add(path.resolve(file));
        const { runs: logged, tornLines } = await readTrainingLog(file);
        if (tornLines) log(`note: ${file}: ${tornLines} line(s) cut off (a crash or a full disk while writing) skipped`);
        runs.push(...logged);
      }
      nameRunsApart(runs);
      const drawn = runs.filter((r) => r.epochs.length > 0);
      for (const r of runs) if (r.epochs.length === 0) log(`note: ${r.name} logged no finished epoch: not drawn`);
      if (drawn.length === 0) {
        const diverged = runs.some((r) => r.divergedAt !== undefined);
        throw inputError({
          file: files.join(', '),
          problem: `no run in ${files.length > 1 ? 'these logs' : 'this log'} finished an epoch: there is nothing to draw`,
          fix: diverged ? 'the run diverged in its first epoch: train again with a lower --lr' : 'draw the log again after the first epoch',
        });
      }
      // Distillation's training loss (α·CE + (1−α)·T²·KL) and cross-entropy on one axis would compare unlike things.
      const mixed = drawn.some((r) => r.distilled) && drawn.some((r) => !r.distilled) && drawn.every((r) => r.epochs.every((e) => Number.isFinite(e.test_loss)));
      if (mixed) log(`note: ${drawn.filter((r) => r.distilled).map((r) => r.name).join(', ')} distilled: their training loss (α·CE + (1−α)·T²·KL) is not the others' cross-entropy, so the right panel draws test loss (cross-entropy on the test images) for every run`);
      await writeFileAtomic(output, new TextEncoder().encode(await renderSvg(trainingCurvesSpec(drawn.map((r) => ({ stage: r.name, history: r.epochs, ...(r.start ? { start: r.start } : {}), ...(r.cuts ? { cuts: r.cuts } : {}) })), mixed ? 'test_loss' : 'train_loss'), 'curves')));
      const summary = drawn.map((r) => {
        // After an iterative prune's last cut only: an earlier epoch's score is of a wider model, not written anywhere.
        const lastCut = Math.max(0, ...(r.cuts ?? []).map((c) => c.epoch));
        const final = r.epochs.filter((e) => e.epoch > lastCut);
        const best = (final.length ? final : r.epochs).reduce((a, b) => (b.test_top1 > a.test_top1 ? b : a));
        const last = r.epochs.at(-1)!;
        return {
          name: r.name, file: r.file, ...(r.model ? { model: r.model } : {}), epochs: r.epochs.length, last_epoch: last.epoch,
          ...(r.start ? { start_top1: r.start.test_top1 } : {}),
          best_top1: best.test_top1, best_epoch: best.epoch, ...(lastCut > 0 ? { after_cut: lastCut } : {}), last_top1: last.test_top1, last_train_loss: last.train_loss, ...(r.distilled ? { distilled: true } : {}),
          seconds: r.epochs.reduce((s, e) => s + e.seconds, 0), finished: r.finished, ...(r.divergedAt !== undefined ? { diverged_at_epoch: r.divergedAt } : {}),
        };
      });
      printResult(options, { output, runs: summary }, () =>
        [
          `wrote ${output}`,
          table(
            ['run', 'epochs', 'best top-1', 'last top-1', 'last train loss', 'time'],
            summary.map((s) => [
              `${s.name}${s.diverged_at_epoch !== undefined ? ` (diverged in epoch ${s.diverged_at_epoch})` : s.finished ? '' : ' (did not finish)'}`,
              s.epochs,
              `${formatPercent(s.best_top1)} (epoch ${s.best_epoch}${s.after_cut !== undefined ? `, after the last cut` : ''})`,
              `${formatPercent(s.last_top1)}${s.start_top1 !== undefined ? ` (from ${formatPercent(s.start_top1)})` : ''}`,
              Number.isFinite(s.last_train_loss) ? `${s.last_train_loss.toFixed(3)}${s.distilled ? ' (KD)' : ''}` : '—',
              `${s.seconds.toFixed(0)} s`,
            ]),
          ),
          ...(summary.some((s) => s.distilled) ? ['(KD): the distillation loss α·CE + (1−α)·T²·KL, not cross-entropy'] : []),
        ].join('\n'),
      );
    });
}

/**
 * Logs of the same file name from different folders (runs/a/train.jsonl, runs/b/train.jsonl) are named by
 * their paths, each run of them too: the legend must say which file a line came from.
 */
function nameRunsApart(runs: LoggedRun[]): void {
  const baseOf = (file: string): string => path.basename(file).replace(/\.jsonl?$/, '');
  const files = new Map<string, Set<string>>();
  for (const r of runs) files.set(baseOf(r.file), (files.get(baseOf(r.file)) ?? new Set()).add(path.resolve(r.file)));
  for (const r of runs) {
    const base = baseOf(r.file);
    // A run's name is its log's base name, then " (run i)" when the log holds several.
    if (files.get(base)!.size > 1) r.name = `${path.relative(process.cwd(), r.file).replace(/\.jsonl?$/, '')}${r.name.slice(base.length)}`;
  }
}

/** A run folder given for a log: where its curves are, or that it has none (a run that trains nothing). */
function runFolderCurves(runFolder: string): Error {
  const charts = path.join(runFolder, 'report', chartFile('accuracyCurves'));
  const fix = 'slim curves draws the --log files of slim train, distill, prune --finetune and quantize --qat';
  if (existsSync(charts)) return usageError(`${runFolder} is a slim run folder: its training curves are drawn in its report (${charts} and ${path.basename(chartFile('lossCurves'))})`, fix);
  type Stage = { kind?: string; result?: { qat?: unknown; finetune_epochs?: number } };
  let stages: Stage[] = [];
  try {
    stages = (JSON.parse(readFileSync(path.join(runFolder, 'manifest.json'), 'utf8')) as { stages?: Stage[] }).stages ?? [];
  } catch {
    // An unreadable manifest: said as a run whose curves are not drawn yet.
    stages = [{ kind: 'train' }];
  }
  // What logs epochs: training stages, a prune stage's fine-tune, QAT.
  const trains = stages.some((st) => ['train', 'finetune', 'distill'].includes(st.kind ?? '') || (st.result?.finetune_epochs ?? 0) > 0 || st.result?.qat !== undefined);
  return usageError(
    trains ? `${runFolder} is a slim run folder whose report has no training curves yet` : `${runFolder} is a slim run folder whose stages train nothing: it has no training curves`,
    trains ? `slim report ${runFolder} draws them; ${fix}` : fix,
  );
}
