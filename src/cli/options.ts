import { InvalidArgumentError, type Command } from 'commander';

/** Parsers and shared option sets for commands; bad values are usage errors (exit 2). */

export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got '${value}'`);
    return n;
  };
}

export function nonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${value}'`);
    return n;
  };
}

export function positiveNumber(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${value}'`);
    return n;
  };
}

export function numberList(name: string, length: number): (value: string) => number[] {
  return (value) => {
    const parts = value.split(',').map((s) => Number(s.trim()));
    if (parts.length !== length || parts.some((n) => !Number.isFinite(n))) {
      throw new InvalidArgumentError(`${name} takes ${length} comma-separated numbers, got '${value}'`);
    }
    return parts;
  };
}

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print one JSON document on stdout (logs and progress go to stderr)');
}

/** --data / --data-dir / --limit and the preprocessing overrides, shared by eval and bench. */
export function withData(cmd: Command, { required }: { required: boolean }): Command {
  const data = required
    ? cmd.requiredOption('--data <name|folder>', "'cifar10' or a folder with one subfolder of images per class")
    : cmd.option('--data <name|folder>', "also measure top-1: 'cifar10' or an image folder (one subfolder per class)");
  return data
    .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download to ~/.cache/slimkit)')
    .option('--split <split>', "CIFAR-10 split to use: 'test' or 'train'", 'test')
    .option('--limit <n>', 'use only the first N images', positiveInt('--limit'))
    .option('--mean <r,g,b>', 'per-channel mean after scaling (default: the model metadata, else CIFAR-10)', numberList('--mean', 3))
    .option('--std <r,g,b>', 'per-channel std (default: the model metadata, else CIFAR-10)', numberList('--std', 3));
}

export function withThreads(cmd: Command): Command {
  return cmd.option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)', positiveInt('--threads'));
}
