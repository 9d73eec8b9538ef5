import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadRecipe } from '../../pipeline/parse.js';
import { benchCommand } from '../../report/columns.js';
import { log } from '../../util/terminal.js';
import { printResult } from '../output.js';
import { withJson } from '../options.js';
import { renderRunSummary, runRecipe, runSummaryJson, withRunOptions, type RunCliOptions } from './run.js';

interface DemoCliOptions extends RunCliOptions {
  full?: boolean;
}

/** The package root: src/cli/commands or dist/cli/commands, three levels down. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function demoRecipePath(full: boolean): string {
  return path.join(ROOT, 'recipes', full ? 'full-gpu.yaml' : 'demo.yaml');
}

export function registerDemo(program: Command): void {
  withJson(
    withRunOptions(
      program
        .command('demo')
        .description('the main job: train, prune, fine-tune, quantize, benchmark and deploy a CIFAR-10 model, and write the HTML report')
        .option('--full', 'the full ResNet18 pipeline of recipes/full-gpu.yaml (needs a CUDA GPU)'),
    ),
  )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  slim demo                        # recipes/demo.yaml on the CPU: about 12 minutes on 2 quiet cores',
        '  slim demo --full --device cuda   # recipes/full-gpu.yaml: full-width ResNet18 on all of CIFAR-10',
        '',
        'A second `slim demo` reuses every finished stage (add --fresh to start over); an interrupted one resumes.',
      ].join('\n'),
    )
    .action(async (options: DemoCliOptions) => {
      const started = performance.now();
      const recipe = await loadRecipe(demoRecipePath(options.full ?? false));
      // As README says: --data-dir, $SLIM_DATA_DIR, then ../shared/data/cifar10 beside the checkout.
      const shared = path.resolve(ROOT, '..', 'shared', 'data', 'cifar10');
      const dataDir = options.dataDir ?? process.env['SLIM_DATA_DIR'] ?? (existsSync(shared) ? shared : undefined);
      if (options.full && (options.device ?? recipe.device) !== 'cuda') {
        log('note: the full recipe is meant for a CUDA GPU (--device cuda); on a CPU it takes many hours');
      }
      const result = await runRecipe(recipe, { ...options, ...(dataDir ? { dataDir } : {}) });
      const seconds = (performance.now() - started) / 1000;
      const check = result.report ? benchCommand(result.report.report) : undefined;
      printResult(options, { ...runSummaryJson(result), recipe: recipe.file, demo_seconds: seconds, ...(check ? { check_command: check } : {}) }, () =>
        [
          renderRunSummary(result),
          `demo finished in ${seconds.toFixed(0)} s (${(seconds / 60).toFixed(1)} min)`,
          ...(check ? ['', 'check the numbers yourself:', `  ${check.replace(/^slim /, 'node bin/slim.js ')}`] : []),
          ...(result.report ? ['', `open the report: file://${result.report.paths.html}`] : []),
        ].join('\n'),
      );
    });
}
