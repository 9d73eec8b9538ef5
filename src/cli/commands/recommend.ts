import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { SlimError, usageError } from '../../errors.js';
import { latestRun, requireRunManifest, runAgainCommand } from '../../pipeline/manifest.js';
import { formatBytes, formatPercent, table } from '../../report/format.js';
import { parseSize, parseTop1, recommend, type Limits } from '../../report/recommend.js';
import { buildRunReport, changedFilesNote, choseOnTestNote, exactKernelsNote } from '../../report/run-report.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { oneOf, withJson } from '../options.js';
import { timedWith } from '../../report/columns.js';

interface RecommendCliOptions extends CommonOptions {
  maxSize?: number;
  maxLatencyMs?: number;
  minTop1?: number;
  run?: string;
  target?: 'host' | 'web';
}

const sizeArg = (value: string): number => {
  const bytes = parseSize(value);
  if (bytes === undefined || bytes <= 0) throw new InvalidArgumentError(`--max-size takes a size such as 3MB, 2.5MiB, 500kB or 120000 (bytes), got '${value}'`);
  // No model file is a few hundred bytes: a bare small number is a unit left out, not a limit.
  if (/^\s*[\d.]+\s*$/.test(value) && bytes < 1024) throw new InvalidArgumentError(`--max-size ${value} would be ${bytes} bytes; write the unit: ${value}MB or ${value}MiB`);
  return bytes;
};

const msArg = (value: string): number => {
  const n = Number(value.replace(/\s*ms$/, ''));
  if (!(n > 0)) throw new InvalidArgumentError(`--max-latency-ms takes milliseconds > 0, got '${value}'`);
  return n;
};

const top1Arg = (value: string): number => {
  const v = parseTop1(value);
  if (v === undefined) throw new InvalidArgumentError(`--min-top1 takes a fraction in (0, 1] such as 0.93, or a percentage such as 93%, got '${value}'`);
  return v;
};

export function registerRecommend(program: Command): void {
  withJson(
    program
      .command('recommend')
      .argument('[run-dir]', 'a run folder (the same as --run)')
      .description('pick the best variant of a run under size / latency / top-1 limits (Pareto), and say why')
      .option('--max-size <size>', 'largest .onnx file, e.g. 3MB or 2.5MiB (MB = 10^6 bytes, MiB = 2^20 as slim bench prints sizes)', sizeArg)
      .option('--max-latency-ms <ms>', 'largest batch-1 p50 latency in milliseconds (as measured by the run\'s bench stage)', msArg)
      .option('--min-top1 <x>', 'smallest top-1, a fraction (0.93) or a percentage (93%)', top1Arg)
      .option('--target <host|web>', 'judge latency as timed there: a bench stage with that target (default: host, where a device bundle runs; else the last bench stage)', oneOf('--target', ['host', 'web']))
      .option('--run <dir>', 'a run folder (default: the most recently updated one under ./runs)'),
  )
    .addHelpText('after', '\nExamples:\n  slim recommend --max-size 3MB --max-latency-ms 5 --min-top1 0.93\n  slim recommend runs/demo --max-latency-ms 1 --json\n\nExit status: 0 when a variant meets the limits, 1 when none does (the output says how close each comes), 2 for bad usage.')
    .action(async (runArg: string | undefined, options: RecommendCliOptions) => {
      if (runArg && options.run && path.resolve(runArg) !== path.resolve(options.run)) throw usageError(`two run folders given: '${runArg}' and --run '${options.run}'`, 'pass one');
      const limits: Limits = {
        ...(options.maxSize !== undefined ? { maxSizeBytes: options.maxSize } : {}),
        ...(options.maxLatencyMs !== undefined ? { maxLatencyMs: options.maxLatencyMs } : {}),
        ...(options.minTop1 !== undefined ? { minTop1: options.minTop1 } : {}),
      };
      // The folder first: a mistyped one is the mistake to hear about, even with no limits given yet.
      const runDir = path.resolve(runArg ?? options.run ?? (await latestRun()));
      // Exit status 1 is "no variant fits" here: a wrong folder is bad usage (2), so a script can tell them apart.
      const manifest = await requireRunManifest(runDir, 'pass a folder made by slim run or slim demo', 'usage');
      if (Object.keys(limits).length === 0) throw usageError('no limits given', 'pass at least one of --max-size, --max-latency-ms, --min-top1');
      const report = buildRunReport(manifest, runDir, options.target ? { target: options.target } : {});
      // A run stopped (or failed) before its bench stage: the recipe need not be the problem.
      if (report.variants.length === 0 && !manifest.complete) {
        const last = manifest.stages.at(-1);
        throw new SlimError({ file: runDir, problem: `the run did not finish${last ? ` (it stopped at stage '${last.id}', ${last.status === 'running' ? 'interrupted' : last.status})` : ''}, and nothing is benchmarked yet`, fix: `run it again (${runAgainCommand(manifest, runDir)}): the finished stages are reused, and its bench stage measures the variants` }, 'usage');
      }
      if (report.variants.length === 0) {
        throw new SlimError(options.target
          ? { file: runDir, problem: `the run has no bench stage timed on ${options.target}`, fix: `add \`- bench: { target: ${options.target} }\` to the recipe, or drop --target` }
          : { file: runDir, problem: 'the run has no benchmarked variants', fix: 'add a `- bench: {}` stage to the recipe and run it again' },
        // Exit 1 means "no variant fits" here: a run that cannot be judged is 2, as a wrong folder is.
        'usage');
      }
      // A file replaced since it was measured: what is recommended is the measured file, not what is there.
      const changed = changedFilesNote(report);
      if (changed) log(`warning: ${changed}`);
      // Judged for the browser, whose int8 kernels are exact: an int8 variant scores its exact-kernel top-1
      // there, not this CPU's saturated one (a trial's recommendation rested on a 2-point gap that was 0.8).
      const inBrowser = report.bench?.target === 'web' && report.variants.some((v) => v.top1_exact_kernels !== undefined);
      const variants = inBrowser
        ? report.variants.map((v) => (v.top1_exact_kernels !== undefined ? { ...v, top1: v.top1_exact_kernels, ...(v.correct_exact_kernels ? { correct: v.correct_exact_kernels } : { correct: undefined }) } : v))
        : report.variants;
      const exactNote = inBrowser
        ? `top-1 of ${variants.filter((v) => v.top1_exact_kernels !== undefined).map((v) => v.id).join(', ')} as the browser computes int8 (exact kernels, scored here with the weights as uint8), not this CPU's (its int8 sums saturate)`
        : exactKernelsNote(report);
      for (const note of [choseOnTestNote(report), exactNote]) if (note) log(`note: ${note}`);
      const r = recommend(variants, limits, report.bench);
      const limitsJson = {
        ...(limits.maxSizeBytes !== undefined ? { max_size_bytes: limits.maxSizeBytes } : {}),
        ...(limits.maxLatencyMs !== undefined ? { max_latency_ms: limits.maxLatencyMs } : {}),
        ...(limits.minTop1 !== undefined ? { min_top1: limits.minTop1 } : {}),
      };
      const assessed = r.assessed.map((a) => ({ id: a.id, latency_ms: r.latencyMs.get(a.id)!, checks: a.checks, fits: a.fits, worst_miss: a.worstMiss }));
      // Which timings judged latency: a run may have timed its variants on the host and in the browser.
      const timing = { stage: report.bench!.stage, target: report.bench!.target ?? 'host', ...(report.bench!.runtime ? { runtime: report.bench!.runtime } : {}) };
      const json = { run_dir: runDir, ...(report.changed_files?.length ? { changed_files: report.changed_files } : {}), latency_from: timing, top1_from: inBrowser ? 'exact int8 kernels (as the browser computes)' : 'this machine', limits: limitsJson, choice: r.choice ?? null, fits: r.choice !== undefined, candidates: r.candidates, closest: r.closest ?? null, nearest_limit: r.nearestLimit ?? null, per_limit: r.perLimit, assessed, explanation: r.lines };
      printResult(options, json, () =>
        [
          `run: ${runDir}; latency as timed by stage '${timing.stage}' (${timedWith(report.bench!)})${report.other_benches.length ? ` — also timed: ${report.other_benches.map((o) => `'${o.stage}' (${o.target}${o.target !== timing.target ? `; --target ${o.target}` : ''})`).join(', ')}` : ''}`,
          table(
            ['variant', 'size', 'p50 ms', 'top-1', 'within limits'],
            variants.map((v) => {
              const a = r.assessed.find((x) => x.id === v.id)!;
              return [`${v.id}${v.id === r.choice ? ' <' : ''}`, formatBytes(v.size_bytes), r.latencyMs.get(v.id)!.toFixed(3), formatPercent(v.top1), a.fits ? 'yes' : `no (${a.checks.filter((c) => !c.met).map((c) => c.limit).join(', ')})`];
            }),
          ),
          ...(report.variants.some((v) => v.turn_p50_ms?.length) ? ["p50 ms: the first variant's p50, the others' by their per-round ratio to it (timed in turns: it holds when the load changed while timing), as the report charts them"] : []),
          '',
          ...r.lines,
        ].join('\n'),
      );
      // As grep does: a script can tell "nothing fits" without reading the output.
      if (r.choice === undefined) process.exitCode = 1;
    });
}
