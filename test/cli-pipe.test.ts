/**
 * A reader that stops reading (`slim … | head`): the command stops with the status of a program SIGPIPE
 * ends, so a script can tell that the work did not finish (it exited 0: a trial's `slim run … 2>&1 | head`
 * had stopped after one stage and reported success).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPE_CLOSED_EXIT } from '../src/cli/main.js';
import { REPO_ROOT } from './helpers/fixtures.js';

/** Runs slim with one output's pipe closed by the reader before it writes anything (the other to /dev/null); resolves its exit code. */
function slimIntoClosedPipe(args: string[], closed: 'stdout' | 'stderr'): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', closed === 'stdout' ? 'pipe' : 'ignore', closed === 'stderr' ? 'pipe' : 'ignore'] });
    child[closed]!.destroy();
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

describe('a closed output pipe', () => {
  it('ends the command with status 141 (128 + SIGPIPE), on stdout and on stderr alike', async () => {
    expect(PIPE_CLOSED_EXIT).toBe(141);
    // stdout: the model table; stderr: the line saying what is wrong (here a folder that does not exist).
    expect(await slimIntoClosedPipe(['zoo', '--list'], 'stdout')).toBe(141);
    expect(await slimIntoClosedPipe(['zoo', 'resnet18-cifar', '--width', '0.125', '-o', path.join(REPO_ROOT, 'tmp-never-written', 'x.onnx')], 'stderr')).toBe(141);
  }, 60_000);
});
