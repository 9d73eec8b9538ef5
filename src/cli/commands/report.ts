import type { Command } from 'commander';
import { writeRunReport } from '../../report/write.js';
import { printResult, type CommonOptions } from '../output.js';
import { withJson } from '../options.js';
import { latestRun } from '../../pipeline/manifest.js';
import { checkOutputDir } from '../paths.js';

interface ReportCliOptions extends CommonOptions {
  out?: string;
}

export function registerReport(program: Command): void {
  withJson(
    program
      .command('report')
      .description('write the report of a run folder: report.html (one self-contained file), report.md, report.json')
      .argument('[run-dir]', 'a folder made by `slim run` or `slim demo` (default: the most recently updated one under ./runs)')
      .option('-o, --out <dir>', 'where to write it (default: <run-dir>/report)'),
  )
    .addHelpText('after', '\nExamples:\n  slim report runs/demo\n  slim report runs/demo --json > report.json')
    .action(async (runArg: string | undefined, options: ReportCliOptions) => {
      const runDir = runArg ?? (await latestRun());
      // As for every other output folder: its parent must exist (a typo should not grow a new tree).
      if (options.out) checkOutputDir(options.out, '--out');
      const { report, paths } = await writeRunReport(runDir, options.out ? { out: options.out } : {});
      printResult(options, report, () =>
        [
          `report of ${report.name}: ${report.variants.length} variant(s), ${report.stages.length} stage(s)${report.complete ? '' : ' (the run did not finish)'}`,
          `  html:     ${paths.html}`,
          `  markdown: ${paths.markdown}`,
          `  json:     ${paths.json}`,
        ].join('\n'),
      );
    });
}
