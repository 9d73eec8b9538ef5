import { Command, CommanderError, type Option } from 'commander';
import { nameOptionsAsFlags, SlimError, usageError } from '../errors.js';
import { fileError } from '../onnx/io.js';
import { COMMANDS } from './commands/index.js';
import { VERSION } from '../version.js';
import { exitPending, exitWhenIdle } from '../engine/exit-gate.js';

/** 128 + SIGPIPE: what a shell reports for a program that wrote to a pipe nobody reads any more. */
export const PIPE_CLOSED_EXIT = 141;

/**
 * The `slim` entry point. Errors a user can act on print one line on stderr and exit 1 (bad input)
 * or 2 (bad usage); anything else is a slimkit bug and prints its stack only with --debug. With --json
 * a failure is also one JSON document on stdout, {"error": {kind, message, file?, where?, problem?, fix?, exit_code}}.
 */
export async function main(argv: string[]): Promise<number> {
  // The user typed flags: the checks shared with the library name them so.
  nameOptionsAsFlags();
  // `slim … | head` closes the pipe early: the command stops there, with the status of a program
  // SIGPIPE ends (141), so a script sees that the work did not finish (it exited 0, and a trial's
  // `slim run … 2>&1 | head` had stopped after one stage). Not under a running LibTorch step: exiting
  // there now and then ended in a segfault (exit-gate.ts).
  let readerGone = false;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      // Later writes fail the same way while the step finishes: one exit.
      if (readerGone) return;
      readerGone = true;
      exitWhenIdle(PIPE_CLOSED_EXIT);
    });
  }
  const program = new Command('slim')
    .description('Train, compress and deploy image classifiers — ONNX in, ONNX out.')
    .version(VERSION)
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: usageLine('slim') });
  for (const register of COMMANDS) register(program);
  for (const command of program.commands) {
    command.configureOutput({ outputError: usageLine(`slim ${command.name()}`) });
    unknownFlagsFirst(command);
  }
  // --json promises one JSON document, --version too (commander would print the bare number).
  const top = argv.slice(2);
  if ((top[0] === '--version' || top[0] === '-V') && top.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ version: VERSION })}\n`);
    return 0;
  }
  const stopHandlers = defaultInterrupt(argv.includes('--json') && !process.env.SLIM_LAUNCHED, commandOf(program, top));
  try {
    const args = withOutputSpelling(program, argv);
    refuseFlagMistakes(program, args);
    await program.parseAsync(args);
    // A command may answer with a status of its own (slim recommend: 1 when nothing fits).
    return Number(process.exitCode ?? 0);
  } catch (thrown) {
    const e = asFileError(thrown);
    const code = reportError(e, argv.includes('--debug'));
    // --json promises one JSON document on stdout: a failure is one too (the line on stderr stays). A
    // worker of `--nproc` leaves it to its launcher, whose stdout it shares: two documents are no JSON.
    if (code !== 0 && argv.includes('--json') && !process.env.SLIM_LAUNCHED) process.stdout.write(`${JSON.stringify({ error: errorDocument(e, code, commandOf(program, top)) }, null, 2)}\n`);
    return code;
  } finally {
    stopHandlers();
  }
}

/**
 * Ctrl-C or SIGTERM in a command that says nothing of its own (eval, bench, quantize…): one line on
 * stderr, and with --json the one JSON document promised (a trial's `slim eval --json` ended with
 * nothing at all). Commands that explain what they kept (train, run, serve) listen too: then they speak.
 */
function defaultInterrupt(json: boolean, command: string): () => void {
  // A rank of `--nproc` leaves Ctrl-C to its launcher, which speaks for the run.
  if (process.env.SLIM_LAUNCHED) return () => undefined;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const onSignal = (): void => {
      // Another handler speaks for the command (now, or already: a second line contradicted a trial's first).
      if (process.listenerCount(signal) > 1 || exitPending()) return;
      const code = signal === 'SIGINT' ? 130 : 143;
      const message = `${command}: ${signal === 'SIGINT' ? 'interrupted' : 'stopped (SIGTERM)'} before it finished (files are written whole or not at all: any it wrote are complete)`;
      process.stderr.write(`\n${message}\n`);
      if (!json) return exitWhenIdle(code);
      process.stdout.write(`${JSON.stringify({ error: { kind: 'interrupted', message, signal, exit_code: code } }, null, 2)}\n`, () => exitWhenIdle(code));
    };
    process.on(signal, onSignal);
    return [signal, onSignal] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

/**
 * An unknown flag is said before a missing required one: `slim eval m.onnx --dta cifar10` said that
 * --data was not given (commander checks required options first), when the typo is the cause. The
 * required options are checked after commander's unknown-option check instead, with its message.
 */
function unknownFlagsFirst(command: Command): void {
  const required = command.options.filter((o) => o.mandatory);
  for (const o of required) o.mandatory = false;
  command.hook('preAction', () => {
    for (const o of required) {
      if (command.getOptionValue(o.attributeName()) === undefined) command.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
    }
  });
  for (const sub of command.commands) unknownFlagsFirst(sub);
}

/**
 * `-o`'s long form is `--output` in some commands and `--out` in others (as the peers spell them): each
 * command takes the other spelling too, rewritten to its own before parsing (`--out=x` included).
 */
export function withOutputSpelling(program: Command, argv: string[]): string[] {
  // The command is the first word that is not an option (the program's own take no value).
  const start = argv.findIndex((a, i) => i >= 2 && !a.startsWith('-'));
  const command = program.commands.find((c) => c.name() === argv[start]);
  const own = command?.options.find((o) => o.short === '-o')?.long;
  if (!command || (own !== '--out' && own !== '--output')) return argv;
  const other = own === '--out' ? '--output' : '--out';
  // Not after `--`: what follows is an argument.
  const end = argv.indexOf('--', start);
  return argv.map((a, i) => (i <= start || (end >= 0 && i >= end) ? a : a === other ? own : a.startsWith(`${other}=`) ? `${own}${a.slice(other.length)}` : a));
}

/**
 * Flag mistakes commander words badly, said before parsing. A flag that needs a value followed straight
 * by another of the command's flags (`--eval --eval-limit 500`): commander takes the second flag as the
 * first one's value and then says "too many arguments" of the number left over, naming neither.
 */
export function refuseFlagMistakes(program: Command, argv: string[]): void {
  const start = argv.findIndex((a, i) => i >= 2 && !a.startsWith('-'));
  const command = program.commands.find((c) => c.name() === argv[start]);
  if (!command) return;
  const byFlag = new Map<string, Option>();
  for (const o of command.options) for (const flag of [o.long, o.short]) if (flag) byFlag.set(flag, o);
  const end = argv.indexOf('--', start);
  for (let i = start + 1; i < (end >= 0 ? end : argv.length) - 1; i++) {
    const option = byFlag.get(argv[i]!);
    const next = argv[i + 1]!;
    if (!option?.required || !byFlag.has(next)) continue;
    const value = option.flags.match(/<([^>]+)>/)?.[1] ?? 'value';
    throw usageError(`${argv[i]} needs a value (${value}), but ${next} follows it`, `give ${argv[i]} its value, or drop it (\`slim ${command.name()} --help\` says what each flag takes)`);
  }
  // An unknown flag that is part of known ones (--limit: --train-limit, --test-limit), which commander's
  // spelling distance does not suggest.
  const known = [...byFlag.keys(), ...program.options.flatMap((o) => (o.long ? [o.long] : [])), '--help'];
  for (const arg of argv.slice(start + 1, end >= 0 ? end : undefined)) {
    const flag = arg.split('=')[0]!;
    if (!flag.startsWith('--') || flag === '--' || known.includes(flag)) continue;
    const word = flag.slice(2);
    const parts = known.filter((k) => k.endsWith(`-${word}`) || k.startsWith(`--${word}-`));
    if (parts.length > 0) throw usageError(`unknown option '${flag}' (Did you mean ${parts.join(' or ')}?)`, `run \`slim ${command.name()} --help\` for usage`);
  }
}

/**
 * A file system error that reached the top without a SlimError around it (a lock, a report, a staging
 * folder): a full or read-only disk is bad input about that path, said as fileError says it, not a
 * "slimkit bug" with the raw errno text.
 */
function asFileError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof SlimError || !(e instanceof Error) || typeof err.path !== 'string' || !DISK_CODES.has(err.code ?? '')) return e;
  return fileError(err.path, err, READ_CALLS.has(err.syscall ?? '') ? 'read' : 'write');
}

const DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'ENAMETOOLONG']);
const READ_CALLS = new Set(['read', 'scandir', 'stat', 'lstat', 'access']);

/** The `slim <command>` the arguments name, for a usage hint ('slim' when none does). */
function commandOf(program: Command, args: readonly string[]): string {
  const name = args.find((a) => !a.startsWith('-'));
  return program.commands.some((c) => c.name() === name) ? `slim ${name}` : 'slim';
}

/** What --json prints for a failure: the same parts the one-line message is made of (a usage error's help hint too). */
function errorDocument(e: unknown, exitCode: number, command: string): Record<string, unknown> {
  if (e instanceof SlimError) return { kind: e.kind, message: oneLine(e.message), ...e.parts, exit_code: exitCode };
  if (e instanceof CommanderError) return { kind: 'usage', message: commanderMessage(e.message), fix: `run \`${command} --help\` for usage`, exit_code: exitCode };
  return { kind: 'internal', message: oneLine(e instanceof Error ? e.message : String(e)), exit_code: exitCode };
}

function reportError(e: unknown, debug: boolean): number {
  if (e instanceof CommanderError) {
    // --help and --version also end here, with exit code 0; commander has printed its message.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof SlimError) {
    process.stderr.write(`slim: ${oneLine(e.message)}\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
    return e.exitCode;
  }
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`slim: internal error: ${oneLine(message)} (this is a slimkit bug; rerun with --debug for the stack)\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}

/**
 * Commander's usage errors as slimkit's own errors read: one line, `slim: problem — what to do`
 * (commander wrote "error: …", a "(Did you mean …?)" line and a help hint on lines of their own).
 */
function usageLine(command: string): (message: string, write: (s: string) => void) => void {
  return (message, write) => write(`slim: ${commanderMessage(message)} — run \`${command} --help\` for usage\n`);
}

/**
 * Commander's message in one line, without its "error: " and, where slimkit's own message names the flag
 * again, its "option '--target <target>' argument 'x' is invalid." (the value was said twice).
 */
function commanderMessage(message: string): string {
  return oneLine(message).replace(/^error: /, '').replace(/^option '(--[\w-]+)[^']*' argument '.*?' is invalid\. (?=\1 )/, '');
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
