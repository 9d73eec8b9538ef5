/**
 * Commands slimkit prints for the user to paste: a path with a space (or a quote) pastes as one argument
 * (a trial's report said `slim bench /…/sp ace/run one/models/…`, and a bundle's README `scp -r my bundle/`).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { shellCommand, shellWord } from '../src/util/shell.js';
import { runAgainCommand } from '../src/pipeline/manifest.js';
import { deploy } from '../src/deploy/bundle.js';
import { fixturePath } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim shell words-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The words a POSIX shell reads back from `line` (printf prints each on its own line). */
const wordsOf = (line: string): string[] => execFileSync('sh', ['-c', `printf '%s\\n' ${line}`], { encoding: 'utf8' }).split('\n').slice(0, -1);

describe('printed commands', () => {
  it('quote each word only where the shell would split or expand it, and read back as given', () => {
    expect(shellWord('runs/demo/models/fp32.onnx')).toBe('runs/demo/models/fp32.onnx');
    expect(shellWord('--data-dir=/a/b')).toBe('--data-dir=/a/b');
    const odd = ['sp ace/run one', "it's", '$HOME', 'a*b', 'semi;colon', ''];
    expect(wordsOf(shellCommand(odd))).toEqual(odd);
  });

  it('slim run again names the run folder unless it is where the recipe runs by default', () => {
    const recipe = { file: path.resolve('my recipes/r1.yaml'), sha256: '', text: '' };
    expect(runAgainCommand({ name: 'r1', recipe }, path.resolve('runs', 'r1'))).toBe("slim run 'my recipes/r1.yaml'");
    expect(runAgainCommand({ name: 'r1', recipe }, path.resolve('tmp/run one'))).toBe("slim run 'my recipes/r1.yaml' --run-dir 'tmp/run one'");
    // Outside the working folder: as it is, not ../../…
    expect(runAgainCommand({ name: 'r1', recipe: { ...recipe, file: '/elsewhere/r.yaml' } }, '/elsewhere/runs/x')).toBe('slim run /elsewhere/r.yaml --run-dir /elsewhere/runs/x');
  });

  it("a bundle's README copies a folder whose name has a space as one argument", async () => {
    const out = path.join(dir, 'my bundle');
    await deploy({ model: fixturePath('torch-tiny-resnet.onnx'), target: 'linux-x64', out });
    const readme = readFileSync(path.join(out, 'README.md'), 'utf8');
    const scp = readme.split('\n').find((l) => l.startsWith('scp -r '))!;
    expect(scp).toMatch(/^scp -r 'my bundle\/' you@your-server:~\//);
    expect(wordsOf(scp.replace(/^scp /, ''))[1]).toBe('my bundle/');
  }, 60_000);
});
