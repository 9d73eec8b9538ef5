/**
 * A training run in its own process, for test/engine-resume.test.ts to SIGKILL mid-epoch. Argument: a
 * JSON object {dataDir, checkpointDir?, resume?, out, epochs}. Prints "step N" after every step and
 * writes the final weights to `out` (checkpoint format) with the run's JSON result on the last line.
 */
import { loadCifar10 } from '../../src/data/cifar10.js';
import { writeCheckpoint } from '../../src/engine/checkpoint.js';
import { trainModel } from '../../src/engine/train.js';
import { smallCnn } from './engine-nets.js';

const args = JSON.parse(process.argv[2]!) as { dataDir: string; checkpointDir?: string; resume?: boolean; out: string; epochs: number };
const train = await loadCifar10('train', { dataDir: args.dataDir, limit: 1024 });
const test = await loadCifar10('test', { dataDir: args.dataDir, limit: 256 });
const result = await trainModel({
  graph: smallCnn({ seed: 4, widths: [8, 16, 16] }),
  data: { train, test },
  epochs: args.epochs,
  batch: 64,
  lr: 0.1,
  threads: 2,
  seed: 11,
  ...(args.checkpointDir ? { checkpointDir: args.checkpointDir } : {}),
  ...(args.resume ? { resume: true } : {}),
  onProgress: (p) => p.phase === 'train' && process.stdout.write(`step ${p.globalStep}\n`),
});
const weights = new Map([...result.graph.initializers].map(([name, t]) => [name, t.data as Float32Array]));
await writeCheckpoint(args.out, { meta: {}, weights, optimizer: { steps: 0, first: [], second: [] } });
process.stdout.write(`${JSON.stringify({ resumedFrom: result.resumedFrom ?? null, steps: result.steps, testAccuracy: result.testAccuracy })}\n`);
