/**
 * Robustness benchmark: N seeded corruptions of a model, each run through the real CLI
 * (`node bin/slim.js info <copy>`) as a child process with a timeout. Prints one JSON line:
 *   {count, clear_errors, loaded_ok, crashes, hangs, bad_exit_codes, multi_line_stderr}
 * A clear error is exit code 1 or 2 with exactly one non-empty stderr line and no stack trace.
 * Exits 1 when any case is not a clear error or a clean load (details of the first few on stderr).
 *
 *   npm run build && npx tsx bench/fuzz-info.ts [--count 1000] [--model path] [--seed 1]
 *       [--timeout-ms 20000] [--concurrency 2] [--in-process] [--keep]
 *
 * --in-process skips the CLI and calls decodeModel + validateGraph directly (no hang protection).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { corruptions, tryLoad, type Corruption } from '../src/onnx/fuzz.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    model: { type: 'string', default: 'test/fixtures/torch-tiny-resnet.onnx' },
    seed: { type: 'string', default: '1' },
    'timeout-ms': { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '2' },
    slim: { type: 'string', default: 'bin/slim.js' },
    'in-process': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

type Verdict = 'clear_error' | 'loaded_ok' | 'crash' | 'hang' | 'bad_exit_code' | 'multi_line_stderr';

interface CaseResult {
  index: number;
  corruption: Corruption;
  verdict: Verdict;
  detail: string;
}

const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;

function judge(code: number | null, signal: NodeJS.Signals | null, timedOut: boolean, stderr: string): { verdict: Verdict; detail: string } {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const detail = `exit ${code ?? signal}: ${lines.slice(0, 3).join(' | ').slice(0, 300)}`;
  if (timedOut) return { verdict: 'hang', detail };
  // A signal, an "internal error" (the CLI's words for a non-SlimError) or a stack trace is a crash.
  if (signal || /internal error/i.test(stderr) || STACK_LINE.test(stderr)) return { verdict: 'crash', detail };
  if (code === 0) return { verdict: 'loaded_ok', detail };
  if (code !== 1 && code !== 2) return { verdict: 'bad_exit_code', detail };
  return lines.length === 1 ? { verdict: 'clear_error', detail } : { verdict: 'multi_line_stderr', detail };
}

function runCli(slim: string, file: string, timeoutMs: number): Promise<{ verdict: Verdict; detail: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [slim, 'info', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 65536) stderr += s;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun(judge(code, timedOut ? null : signal, timedOut, stderr));
    });
  });
}

function runInProcess(bytes: Uint8Array): { verdict: Verdict; detail: string } {
  const r = tryLoad(bytes);
  if (r.outcome === 'loaded') return { verdict: 'loaded_ok', detail: 'loaded' };
  if (r.outcome === 'crash') return { verdict: 'crash', detail: r.message.split('\n').slice(0, 3).join(' | ') };
  return { verdict: r.message.includes('\n') ? 'multi_line_stderr' : 'clear_error', detail: r.message };
}

async function main(): Promise<number> {
  const count = Number(args.count);
  const seed = Number(args.seed);
  const timeoutMs = Number(args['timeout-ms']);
  const concurrency = Math.max(1, Number(args.concurrency));
  const slim = resolve(args.slim!);
  if (![count, seed, timeoutMs, concurrency].every(Number.isFinite) || count < 1) {
    console.error('fuzz-info: --count, --seed, --timeout-ms and --concurrency take numbers');
    return 2;
  }
  if (!args['in-process'] && !existsSync(resolve('dist/cli/main.js')) && args.slim === 'bin/slim.js') {
    console.error('fuzz-info: the CLI is not built (dist/cli/main.js is missing): run `npm run build`, or pass --in-process');
    return 2;
  }
  const source = new Uint8Array(readFileSync(args.model!));
  const dir = mkdtempSync(join(tmpdir(), 'slim-fuzz-'));
  const cases = [...corruptions(source, { seed, count })];
  const results: CaseResult[] = [];
  const started = performance.now();
  try {
    let next = 0;
    const workerLoop = async (): Promise<void> => {
      while (next < cases.length) {
        const index = next++;
        const corruption = cases[index]!;
        let outcome: { verdict: Verdict; detail: string };
        if (args['in-process']) {
          outcome = runInProcess(corruption.bytes);
        } else {
          const file = join(dir, `case-${String(index).padStart(5, '0')}.onnx`);
          writeFileSync(file, corruption.bytes);
          outcome = await runCli(slim, file, timeoutMs);
        }
        results.push({ index, corruption, ...outcome });
      }
    };
    await Promise.all(Array.from({ length: args['in-process'] ? 1 : concurrency }, workerLoop));
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    else console.error(`fuzz-info: copies kept in ${dir}`);
  }

  const tally = (v: Verdict): number => results.filter((r) => r.verdict === v).length;
  const summary = {
    count: results.length,
    clear_errors: tally('clear_error'),
    loaded_ok: tally('loaded_ok'),
    crashes: tally('crash'),
    hangs: tally('hang'),
    bad_exit_codes: tally('bad_exit_code'),
    multi_line_stderr: tally('multi_line_stderr'),
  };
  const bad = results.filter((r) => r.verdict !== 'clear_error' && r.verdict !== 'loaded_ok').sort((a, b) => a.index - b.index);
  for (const r of bad.slice(0, 10)) {
    console.error(`fuzz-info: #${r.index} (seed ${seed}) ${r.corruption.description}: ${r.verdict}: ${r.detail}`);
  }
  console.error(`fuzz-info: ${results.length} cases in ${((performance.now() - started) / 1000).toFixed(1)} s` +
    `${args['in-process'] ? ' (in process)' : ` via ${args.slim} info`}`);
  console.log(JSON.stringify(summary));
  return bad.length === 0 ? 0 : 1;
}

process.exitCode = await main();
