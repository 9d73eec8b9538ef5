/** 'input': a file or data set is wrong (exit 1); 'usage': a flag or option is (exit 2). */
export type ErrorKind = 'input' | 'usage';

export interface ErrorParts {
  /** File the problem is in, when there is one. */
  file?: string;
  /** Where inside it: a node, tensor, flag or record. */
  where?: string;
  /** What is wrong. */
  problem: string;
  /** What to do next. */
  fix?: string;
}

/**
 * Errors a user can act on. The CLI prints `message` on one line and exits with `exitCode`
 * (1: bad input such as a file or data set, 2: bad usage such as a flag). Anything that is not a
 * SlimError is a bug in slimkit and is reported with its stack.
 */
export class SlimError extends Error {
  readonly kind: ErrorKind;
  readonly parts: ErrorParts;

  constructor(parts: ErrorParts, kind: ErrorKind = 'input', options?: { cause?: unknown }) {
    super(formatParts(parts), options);
    this.name = 'SlimError';
    this.kind = kind;
    this.parts = parts;
  }

  get exitCode(): 1 | 2 {
    return this.kind === 'usage' ? 2 : 1;
  }

  /** The same error with a file name filled in (for errors raised below the file-reading layer). */
  inFile(file: string): SlimError {
    if (this.parts.file) return this;
    return new SlimError({ ...this.parts, file }, this.kind, { cause: this.cause });
  }
}

function formatParts({ file, where, problem, fix }: ErrorParts): string {
  const location = [file, where].filter(Boolean).join(': ');
  const head = location ? `${location}: ${problem}` : problem;
  return oneLine(fix ? `${head} — ${fix}` : head);
}

/** Names read from damaged files can hold newlines and control bytes; the CLI promises one line. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function usageError(problem: string, fix?: string): SlimError {
  return new SlimError({ problem, ...(fix ? { fix } : {}) }, 'usage');
}

export function inputError(parts: ErrorParts): SlimError {
  return new SlimError(parts, 'input');
}

/**
 * A model and data (or a teacher and a student) that do not fit each other — image size, channels,
 * class count: neither file is wrong, their pairing is. Usage (exit 2) in every command, so a script
 * sees one code for one problem (eval said 1 where train and quantize said 2).
 */
export function mismatchError(parts: ErrorParts): SlimError {
  return new SlimError(parts, 'usage');
}

/**
 * How messages name an option: as the CLI's flag (`--label-smoothing 0.1`) in the `slim` process, as
 * the library's option (`labelSmoothing: 0.1`) for a program calling slimkit's functions — an error
 * should name what its reader typed. The CLI switches to flags once, at start (cli/main.ts).
 */
let optionsAsFlags = false;

export function nameOptionsAsFlags(): void {
  optionsAsFlags = true;
}

/**
 * An option as the reader wrote it: `option('--bn-epochs')` is `--bn-epochs` or `bnEpochs`; with a
 * value, `option('--cpu', 'amx')` is `--cpu amx` or `cpu: 'amx'`, and `option('--force', true)` is
 * `--force` or `force: true`.
 */
export function option(flag: string, value?: string | number | true): string {
  if (optionsAsFlags) return value === undefined || value === true ? flag : `${flag} ${value}`;
  const key = flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  return value === undefined ? key : `${key}: ${typeof value === 'string' ? `'${value}'` : String(value)}`;
}
