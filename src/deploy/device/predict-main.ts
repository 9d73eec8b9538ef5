/**
 * The bundle's `predict` command: image files (or folders of them) → top-k classes, as text or one JSON
 * document. Same preprocessing and model code as `slim serve`; see the bundle's README. Loaded by
 * predict.ts once the native modules are known to fit this machine.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SlimError } from '../../errors.js';
import { openClassifier, topK, type Prediction } from '../../serve/classifier.js';
import { readBundle } from '../open-bundle.js';
import { intSetting } from './common.js';
import { PREDICT_HELP as HELP } from './help.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

interface Result {
  file: string;
  top?: Prediction[];
  /** The model's run alone (what int8 speeds up). */
  model_ms?: number;
  /** Reading, decoding and preprocessing the file, and the model's run. */
  latency_ms?: number;
  error?: string;
}

export async function main(dir: string): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: { top: { type: 'string' }, json: { type: 'boolean' }, threads: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
  } catch (e) {
    throw new SlimError({ problem: (e as Error).message, fix: 'run node predict.js --help' }, 'usage');
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new SlimError({ problem: 'no images given', fix: 'node predict.js photo.jpg [more.jpg | folder/]' }, 'usage');
  const bundle = await readBundle(dir);
  const labels = bundle.config.labels;
  // Every class when there are fewer, as the server does.
  const top = Math.min(intSetting('--top', values.top, 5), labels.length);
  const threads = intSetting(values.threads !== undefined ? '--threads' : 'SLIM_THREADS', values.threads ?? process.env.SLIM_THREADS, 0, 0);
  // Files given on this machine: no pixel limit (that guards the server's memory against strangers' uploads).
  const classifier = await openClassifier({ config: bundle.config, model: bundle.modelPath, maxBatch: 1, maxPixels: Number.POSITIVE_INFINITY, ...(threads ? { threads } : {}) });
  const results: Result[] = [];
  try {
    for (const file of await expand(positionals)) {
      const start = performance.now();
      try {
        const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
          throw new SlimError({ file, problem: `cannot read (${e.code ?? e.message})` });
        });
        const image = await classifier.prepare(bytes, file);
        const modelStart = performance.now();
        const [scores] = await classifier.run([image]);
        const ms = (from: number): number => Math.round((performance.now() - from) * 1000) / 1000;
        results.push({ file, top: topK(scores!, labels, top), model_ms: ms(modelStart), latency_ms: ms(start) });
      } catch (e) {
        if (!(e instanceof SlimError)) throw e;
        results.push({ file, error: e.message });
        process.stderr.write(`predict: ${e.message}\n`);
      }
    }
  } finally {
    await classifier.close();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ model: bundle.config.name, sha256: bundle.config.model.sha256, results }, null, 2)}\n`);
  } else {
    for (const r of results) {
      if (r.top) process.stdout.write(`${r.file}: ${r.top.map((p) => `${p.label} ${(p.score * 100).toFixed(1)} %`).join(', ')}  (${r.latency_ms!.toFixed(1)} ms, model ${r.model_ms!.toFixed(1)} ms)\n`);
    }
  }
  return results.some((r) => r.error) ? 1 : 0;
}

/** Files as given, folders as the images anywhere below them (class folders too), in sorted order. */
async function expand(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    const info = await stat(arg).catch(() => undefined);
    if (!info) throw new SlimError({ file: arg, problem: 'not found', fix: 'check the path' });
    if (!info.isDirectory()) {
      out.push(arg);
      continue;
    }
    const entries = await readdir(arg, { recursive: true, withFileTypes: true });
    // Dirent.parentPath is Node ≥ 20.12; the bundle runs on 20.9 too, where it is .path.
    const files = entries.filter((e) => e.isFile()).map((e) => path.relative(arg, path.join((e as { parentPath?: string }).parentPath ?? e.path, e.name))).filter((n) => !n.split(path.sep).some((part) => part.startsWith('.')));
    const names = files.filter((n) => IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase())).sort();
    if (names.length === 0) throw new SlimError({ file: arg, problem: 'holds no images', fix: `put ${[...IMAGE_EXTENSIONS].join(', ')} files in it` });
    // Said, not passed over in silence: a photo saved as .heic is skipped too.
    const skipped = files.filter((n) => !IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase()));
    if (skipped.length) process.stderr.write(`predict: note: skipped ${skipped.length} file(s) in ${arg} whose names are not images' (${skipped.slice(0, 3).join(', ')}${skipped.length > 3 ? ', …' : ''}): ${[...IMAGE_EXTENSIONS].join(', ')} are read\n`);
    out.push(...names.map((n) => path.join(arg, n)));
  }
  return out;
}
