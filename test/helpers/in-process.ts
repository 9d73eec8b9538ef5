import { Command } from 'commander';
import { vi } from 'vitest';
import { nameOptionsAsFlags } from '../../src/errors.js';

/**
 * Run one `slim <name>` command in this process (so the engine's native state and the test share a
 * process, which is faster than a child) and return what it printed on stdout.
 */
export async function runCommandInProcess(
  register: (program: Command) => void,
  name: string,
  args: string[],
  o: { onStderr?: (text: string) => void } = {},
): Promise<string> {
  // The command line's surface: options are named as flags, as cli/main.ts sets it.
  nameOptionsAsFlags();
  const program = new Command('slim').exitOverride();
  register(program);
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  // Logs still reach the terminal; the test sees them too.
  const write = process.stderr.write.bind(process.stderr);
  const errSpy = o.onStderr
    ? vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        o.onStderr!(String(chunk));
        return write(chunk);
      })
    : undefined;
  try {
    await program.parseAsync(['node', 'slim', name, ...args]);
  } finally {
    spy.mockRestore();
    errSpy?.mockRestore();
  }
  return stdout;
}
