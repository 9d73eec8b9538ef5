import cliProgress from 'cli-progress';
import { describe, expect, it } from 'vitest';
import { barFormat } from '../src/util/terminal.js';

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
});
