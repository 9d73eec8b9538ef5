/**
 * Top-1 right after structured pruning (no fine-tuning) with the layers after each cut renormalized to
 * their calibrated output statistics (compress/prune/renormalize.ts), against mean replacement alone and
 * against the cut as it is, at a few MAC targets, on a trained CIFAR-10 model. One JSON line.
 *
 *   npx tsx bench/prune-renormalize.ts MODEL.onnx [--targets 0.9,0.7,0.5] [--test-limit 2000]
 *        [--calib-samples 256] [--data-dir D]
 *
 * Calibration images come from the training set, scoring from the test set: the README's figures are
 * this script's output for the demo's ResNet18-CIFAR ×0.25 and a trial's MobileNet-like net.
 */
import { parseArgs } from 'node:util';
import { pruneStructured } from '../src/compress/prune/index.js';
import { loadCifar10 } from '../src/data/index.js';
import { normalizationFor } from '../src/data/model-data.js';
import { loadModel } from '../src/onnx/validate.js';
import { evaluateModel } from '../src/toolkit.js';
import { emit } from './prune-common.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    targets: { type: 'string', default: '0.9,0.7,0.5' },
    'test-limit': { type: 'string', default: '2000' },
    'calib-samples': { type: 'string', default: '256' },
    'data-dir': { type: 'string' },
  },
});
const file = positionals[0];
if (!file) throw new Error('usage: bench/prune-renormalize.ts MODEL.onnx [--targets 0.9,0.7,0.5]');
const dataDir = values['data-dir'] ? { dataDir: values['data-dir'] } : {};
const { graph } = await loadModel(file);
const normalization = normalizationFor(graph);
const train = await loadCifar10('train', { ...dataDir, limit: 5000 });
const test = await loadCifar10('test', { ...dataDir, limit: Number(values['test-limit']) });
const top1 = async (g: typeof graph): Promise<number> => (await evaluateModel(g, test, { normalization })).top1;

const ways = { as_cut: { compensate: false, renormalize: false }, mean_replacement: { compensate: true, renormalize: false }, renormalized: { compensate: true, renormalize: true } } as const;
const rows: Record<string, number | string>[] = [];
for (const target of values.targets.split(',').map(Number)) {
  const row: Record<string, number | string> = { target_macs: target };
  for (const [name, way] of Object.entries(ways)) {
    const r = await pruneStructured(graph, { target: { kind: 'macs', value: target }, importance: 'l2', roundTo: 1, calibration: { images: train, normalization, samples: Number(values['calib-samples']) }, ...way });
    row[name] = await top1(r.graph);
  }
  rows.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}
emit({ model: file, unpruned: await top1(graph), test_images: test.labels.length, calibration_images: Number(values['calib-samples']), rows });
