import cliProgress from 'cli-progress';
import { describe, expect, it } from 'vitest';
import { barFormat, progress } from '../src/util/terminal.js';

describe('progress bars', () => {
  it('fill in every token of the line (cli-progress leaves an unknown {token} as it is)', () => {
    let written = '';
    const stream = { isTTY: false, columns: 200, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WritableStream;
    // noTTYOutput: cli-progress renders the line to a stream that is not a terminal.
    const bar = new cliProgress.SingleBar({ format: barFormat('train', 'steps'), stream, noTTYOutput: true, barsize: 10 }, cliProgress.Presets.shades_classic);
    bar.start(100, 0, { rate: '', phase: '' });
    bar.update(50, { rate: '12 steps/s', phase: 'epoch 1/3 ' });
    bar.stop();
    const line = written.split('\n').find((l) => l.includes('50/100'));
    expect(line).toMatch(/train \[.{10}\] 50% \| 50\/100 steps \| 12 steps\/s epoch 1\/3 \| ETA /);
    expect(written).not.toMatch(/\{\w+\}/);
  });

  it('a bar that appears late starts at the work done, its rate counted from when the work began', () => {
    let written = '';
    const stderr = process.stderr as unknown as { isTTY: boolean | undefined; write: unknown };
    const [tty, write] = [stderr.isTTY, stderr.write];
    stderr.isTTY = true;
    stderr.write = (s: string) => ((written += s), true);
    try {
      // 40 images read in the 2 s before the bar showed, 10 more since.
      const bar = progress('read photos', 100, 'img', { done: 40, since: performance.now() - 2000 });
      bar.update(50);
      bar.stop();
    } finally {
      stderr.isTTY = tty;
      stderr.write = write;
    }
    expect(written).toMatch(/40\/100 img/);
    expect(written).not.toMatch(/ 0\/100 img/);
    // 50 in about 2 s: 25 img/s (counted from the bar, it was 10 in no time: thousands a second).
    expect(written).toMatch(/50\/100 img \| 2[45] img\/s/);
  });
});
