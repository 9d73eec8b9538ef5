/**
 * "Any CNN exported by PyTorch must work": every slim command a user would try, on torchvision's
 * classifiers as torch.onnx exports them (random init, 10 classes, 32×32; BN folded and BN kept). Prints
 * a markdown table (✓ / ✗ per command) and the first error line of each failure; writes OUT/sweep.json.
 *
 *   npx tsx bench/torchvision-sweep.ts [--out DIR] [--models resnet18,mobilenet_v2,...] [--kinds folded,bn]
 *                                      [--steps info,new head,...] [--skip-export] [--data-dir D]
 *
 * Needs `npm run build` (it runs bin/slim.js as a user would), Debian's python3-torch and
 * python3-torchvision (apt-get install python3-torchvision) for the export, and CIFAR-10 for eval,
 * calibration and the short training runs (64 images: they check that training runs, not accuracy).
 * "new head" is transfer learning: the 10-class model given a fresh 3-class classifier and only that
 * trained (`--new-head --freeze-backbone`), on a folder of three CIFAR-10 classes it writes to OUT/three.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadCifar10 } from '../src/data/cifar10.js';
import { toChannelsLast } from '../src/data/transforms.js';
import path from 'node:path';
import { parseArgs } from 'node:util';

const REPO = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(REPO, 'runs', 'torchvision-sweep') },
    models: { type: 'string' },
    kinds: { type: 'string', default: 'folded,bn' },
    'skip-export': { type: 'boolean', default: false },
    steps: { type: 'string' },
    'data-dir': { type: 'string', default: process.env.SLIM_DATA_DIR ?? path.resolve(REPO, '..', 'shared', 'data', 'cifar10') },
  },
});
const out = path.resolve(values.out);
const slim = path.join(REPO, 'bin', 'slim.js');
if (!existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first: the sweep runs bin/slim.js');
mkdirSync(out, { recursive: true });

const models = values.models?.split(',') ?? [];
if (!values['skip-export']) {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torchvision'], { stdio: 'ignore' });
  } catch {
    throw new Error('the export needs torchvision for Debian\'s python3-torch: apt-get install python3-torchvision');
  }
  execFileSync('/usr/bin/python3', [path.join(REPO, 'bench', 'torchvision-export.py'), out, ...models], { stdio: ['ignore', 'ignore', 'inherit'] });
}
const names = models.length ? models : execFileSync('/usr/bin/python3', [path.join(REPO, 'bench', 'torchvision-export.py'), '--list'], { encoding: 'utf8' }).trim().split(' ');

interface Step {
  name: string;
  args: (model: string, dir: string) => string[];
  /** Runs only when this earlier output exists. */
  needs?: string;
}
const data = ['--data-dir', values['data-dir']];
const three = path.join(out, 'three');
await threeClassFolder(three);
const STEPS: Step[] = [
  { name: 'info', args: (m) => ['info', m, '--json'] },
  { name: 'eval', args: (m) => ['eval', m, '--data', 'cifar10', ...data, '--limit', '200', '--json'] },
  { name: 'optimize', args: (m, d) => ['optimize', m, '-o', `${d}/opt.onnx`, '--json'] },
  { name: 'quantize', args: (m, d) => ['quantize', m, '-o', `${d}/q.onnx`, '--calib', 'cifar10', ...data, '--samples', '64', '--eval-limit', '200', '--json'] },
  { name: 'prune 50 % MACs', args: (m, d) => ['prune', m, '-o', `${d}/p.onnx`, '--structured', '--target-macs', '0.5', '--json'] },
  { name: 'prune + int8', needs: 'p.onnx', args: (_m, d) => ['quantize', `${d}/p.onnx`, '-o', `${d}/pq.onnx`, '--calib', 'cifar10', ...data, '--samples', '64', '--eval-limit', '200', '--json'] },
  { name: 'sparse 50 %', args: (m, d) => ['prune', m, '-o', `${d}/s.onnx`, '--unstructured', '--sparsity', '0.5', '--json'] },
  { name: 'train', args: (m, d) => ['train', '--model', m, '--data', 'cifar10', ...data, '--epochs', '1', '--train-limit', '64', '--test-limit', '64', '--batch', '32', '--threads', '2', '--out', `${d}/t.onnx`, '--json'] },
  { name: 'QAT', needs: 'q.onnx', args: (m, d) => ['quantize', m, '-o', `${d}/qat.onnx`, '--qat', '--epochs', '1', '--data', 'cifar10', ...data, '--train-limit', '64', '--eval-limit', '64', '--batch', '32', '--json'] },
  { name: 'new head', args: (m, d) => ['train', '--model', m, '--data', three, '--new-head', '--freeze-backbone', '--epochs', '1', '--batch', '16', '--lr', '0.01', '--threads', '2', '--out', `${d}/head.onnx`, '--json'] },
  { name: 'deploy', needs: 'q.onnx', args: (_m, d) => ['deploy', `${d}/q.onnx`, '--target', 'linux-x64', '--out', `${d}/bundle`, '--force', '--json'] },
];

const STEPS_RUN = values.steps ? STEPS.filter((s) => values.steps!.split(',').includes(s.name)) : STEPS;

/** Three CIFAR-10 classes as an image folder (24 training and 12 test images each): data with another class count. */
async function threeClassFolder(dir: string): Promise<void> {
  if (existsSync(path.join(dir, 'test'))) return;
  for (const [split, perClass] of [['train', 24], ['test', 12]] as const) {
    const set = await loadCifar10(split, { dataDir: values['data-dir'] });
    const [channels, height, width] = set.imageShape;
    const size = channels * height * width;
    const taken = [0, 0, 0];
    for (let i = 0; i < set.labels.length && taken.some((n) => n < perClass); i++) {
      const label = set.labels[i]!;
      if (label > 2 || taken[label]! >= perClass) continue;
      taken[label]!++;
      const folder = path.join(dir, split, set.classes[label]!);
      mkdirSync(folder, { recursive: true });
      const pixels = toChannelsLast(set.pixels.subarray(i * size, (i + 1) * size), set.imageShape);
      await sharp(pixels, { raw: { width, height, channels: channels as 3 } }).png().toFile(path.join(folder, `${i}.png`));
    }
  }
}

interface Row {
  model: string;
  params?: number;
  macs?: number | null;
  macsAfterPrune?: number;
  steps: Record<string, { ok: boolean; seconds: number; error?: string }>;
}
const rows: Row[] = [];
for (const name of names) {
  for (const kind of values.kinds.split(',')) {
    const model = path.join(out, `${name}-${kind}.onnx`);
    const dir = path.join(out, `${name}-${kind}`);
    mkdirSync(dir, { recursive: true });
    const row: Row = { model: `${name} (${kind === 'bn' ? 'BN kept' : 'BN folded'})`, steps: {} };
    for (const step of STEPS_RUN) {
      if (step.needs && !existsSync(path.join(dir, step.needs))) continue;
      const start = Date.now();
      const run = spawnSync(process.execPath, [slim, ...step.args(model, dir)], { encoding: 'utf8', maxBuffer: 1 << 28 });
      const ok = run.status === 0;
      const error = ok ? undefined : (run.stderr.split('\n').find((l) => l.startsWith('slim:')) ?? run.stderr.trim().split('\n').pop() ?? '').slice(0, 240);
      row.steps[step.name] = { ok, seconds: (Date.now() - start) / 1000, ...(error ? { error } : {}) };
      process.stderr.write(`${row.model} ${step.name}: ${ok ? 'ok' : `FAILED ${error}`} (${row.steps[step.name]!.seconds.toFixed(0)} s)\n`);
      if (ok && step.name === 'info') Object.assign(row, pick(JSON.parse(run.stdout), ['params', 'macs']));
      if (ok && step.name === 'prune 50 % MACs') row.macsAfterPrune = (JSON.parse(run.stdout) as { macs_after: number }).macs_after;
    }
    rows.push(row);
  }
}
writeFileSync(path.join(out, 'sweep.json'), `${JSON.stringify(rows, null, 2)}\n`);

const columns = STEPS_RUN.map((s) => s.name);
const lines = [
  `| model | params | MACs | ${columns.join(' | ')} |`,
  `|---|---|---|${columns.map(() => '---').join('|')}|`,
  ...rows.map((r) => `| ${r.model} | ${((r.params ?? 0) / 1e6).toFixed(2)} M | ${r.macs == null ? '—' : `${(r.macs / 1e6).toFixed(1)} M`} | ${columns
    .map((c) => {
      const s = r.steps[c];
      if (!s) return '—';
      if (!s.ok) return '✗';
      return c === 'prune 50 % MACs' && r.macs && r.macsAfterPrune ? `✓ ${Math.round((100 * r.macsAfterPrune) / r.macs)} %` : '✓';
    })
    .join(' | ')} |`),
];
const failures = rows.flatMap((r) => Object.entries(r.steps).filter(([, s]) => !s.ok).map(([c, s]) => `- ${r.model}, ${c}: ${s.error}`));
process.stdout.write(`${lines.join('\n')}\n${failures.length ? `\nFailures:\n${failures.join('\n')}\n` : '\nNo failures.\n'}`);

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}
