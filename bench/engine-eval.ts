/**
 * How long the training engine takes to score CIFAR-10's test images — what every epoch of `slim train`
 * ends with, and what its progress bar now counts through. Prints one JSON line:
 *   {"model":…, "images":…, "seconds":…, "images_per_second":…, "threads":…}
 *
 *   npx tsx bench/engine-eval.ts [--model resnet18-cifar] [--width 1] [--threads 2] [--batch 512] [--device cpu|cuda]
 *                                [--data-dir D]   (default $SLIM_DATA_DIR, else ../shared/data/cifar10)
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { DeviceImageSet, EnginePlan } from '../src/engine/plan.js';
import { buildZooModel, type ZooName } from '../src/zoo/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet18-cifar' },
    width: { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '512' },
    device: { type: 'string', default: 'cpu' },
    'data-dir': { type: 'string', default: process.env.SLIM_DATA_DIR ?? path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'cifar10') },
  },
});
const device = values.device === 'cuda' ? 'cuda' : 'cpu';
const plan = EnginePlan.create(buildZooModel(values.model as ZooName, { width: Number(values.width), seed: 1 }), { threads: Number(values.threads), device });
const test = DeviceImageSet.upload(await loadCifar10('test', { dataDir: values['data-dir'] }), { normalization: CIFAR10_NORMALIZATION, device });
const start = performance.now();
const result = await plan.evaluateInChunks(test, Number(values.batch), () => {});
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ model: values.model, width: Number(values.width), device, images: result.count, seconds: Number(seconds.toFixed(2)), images_per_second: Math.round(result.count / seconds), threads: Number(values.threads) }));
