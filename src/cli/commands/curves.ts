import type { Command } from 'commander';
import path from 'node:path';
import { usageError } from '../../errors.js';
import { writeFileAtomic } from '../../onnx/io.js';
import { renderSvg, trainingCurvesSpec } from '../../report/charts.js';
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
      .description('draw test top-1 and training loss per epoch from training logs (--log of train, distill, quantize --qat, prune --finetune) as one SVG, one line per run')
      .argument('<log...>', 'JSON-lines logs; several runs (or runs appended to one log) are drawn together')
      .option('-o, --out <file.svg>', 'the SVG to write (default: the first log with .svg)'),
  )
    .addHelpText('after', '\nExamples:\n  slim curves train.jsonl\n  slim curves plain.jsonl distilled.jsonl -o kd-vs-plain.svg')
    .action(async (files: string[], options: CurvesCliOptions) => {
      const output = options.out ?? `${files[0]!.replace(/\.jsonl?$/, '')}.svg`;
      if (!output.toLowerCase().endsWith('.svg')) throw usageError(`-o writes an SVG file, got '${output}'`, 'name it something.svg');
      checkOutputFile(output, '-o', files);
      const runs: LoggedRun[] = [];
      for (const file of files) {
        const { runs: logged, tornLines } = await readTrainingLog(file);
        if (tornLines) log(`note: ${file}: ${tornLines} line(s) cut off (a crash or a full disk while writing) skipped`);
        runs.push(...logged);
      }
      nameRunsApart(runs);
      const drawn = runs.filter((r) => r.epochs.length > 0);
      for (const r of runs) if (r.epochs.length === 0) log(`note: ${r.name} logged no finished epoch: not drawn`);
      if (drawn.length === 0) throw usageError('no run in these logs finished an epoch: there is nothing to draw', 'draw the log again after the first epoch');
      await writeFileAtomic(output, new TextEncoder().encode(await renderSvg(trainingCurvesSpec(drawn.map((r) => ({ stage: r.name, history: r.epochs }))), 'curves')));
      const summary = drawn.map((r) => {
        const best = r.epochs.reduce((a, b) => (b.test_top1 > a.test_top1 ? b : a));
        const last = r.epochs.at(-1)!;
        return {
          name: r.name, file: r.file, ...(r.model ? { model: r.model } : {}), epochs: r.epochs.length, last_epoch: last.epoch,
          best_top1: best.test_top1, best_epoch: best.epoch, last_top1: last.test_top1, last_train_loss: last.train_loss,
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
              `${formatPercent(s.best_top1)} (epoch ${s.best_epoch})`,
              formatPercent(s.last_top1),
              Number.isFinite(s.last_train_loss) ? s.last_train_loss.toFixed(3) : '—',
              `${s.seconds.toFixed(0)} s`,
            ]),
          ),
        ].join('\n'),
      );
    });
}

/** Logs of the same name from different folders (runs/a/train.jsonl, runs/b/train.jsonl) are named by their path. */
function nameRunsApart(runs: LoggedRun[]): void {
  const count = new Map<string, number>();
  for (const r of runs) count.set(r.name, (count.get(r.name) ?? 0) + 1);
  for (const r of runs) {
    if (count.get(r.name)! > 1) r.name = r.name.replace(path.basename(r.file).replace(/\.jsonl?$/, ''), path.relative(process.cwd(), r.file).replace(/\.jsonl?$/, ''));
  }
}
