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
