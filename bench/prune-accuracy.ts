/**
 * Top-1 right after structured pruning (no fine-tuning) for each importance criterion and scope, on a
 * trained model and the CIFAR-10 test set: which channels a criterion keeps matters most before any
 * recovery, and every criterion should beat the random baseline. One JSON line.
 *
 *   npx tsx bench/prune-accuracy.ts [--model /work/models/r18w025-torch.onnx] [--target-macs 0.5]
 *        [--importance l1,l2,random] [--scope layer,global] [--round-to auto] [--limit 10000] [--threads 2]
 */
import { parseArgs } from 'node:util';
import { pruneStructured, type ImportanceName, type Scope } from '../src/compress/prune/index.js';
import { loadModel } from '../src/onnx/validate.js';
import { cifarTest, emit, top1, TRAINED_PEER } from './prune-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: TRAINED_PEER },
    'target-macs': { type: 'string', default: '0.5' },
    importance: { type: 'string', default: 'l1,l2,random' },
    scope: { type: 'string', default: 'layer,global' },
    'round-to': { type: 'string', default: 'auto' },
    limit: { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
  },
});
const threads = Number(values.threads);
const { graph, facts } = await loadModel(values.model!);
const set = await cifarTest(Number(values.limit));
const base = await top1(graph, set, threads);
process.stderr.write(`unpruned top-1 ${(base * 100).toFixed(2)} %\n`);
const roundTo = values['round-to'] === 'auto' ? 'auto' : Number(values['round-to']);
const variants = [];
for (const scope of values.scope!.split(',') as Scope[]) {
  for (const importance of values.importance!.split(',') as ImportanceName[]) {
    const r = await pruneStructured(graph, { target: { kind: 'macs', value: Number(values['target-macs']) }, importance, scope, roundTo });
    const acc = await top1(r.graph, set, threads);
    process.stderr.write(`${scope} ${importance}: MACs ${(r.macsAfter / facts.totalMacs).toFixed(3)}, top-1 ${(acc * 100).toFixed(2)} %\n`);
    variants.push({ scope, importance, macs_ratio: r.macsAfter / facts.totalMacs, top1: acc, drop_pt: (base - acc) * 100, channels: r.groups.map((g) => g.channelsAfter) });
  }
}
emit({ bench: 'prune-accuracy', model: values.model, images: set.labels.length, macs_before: facts.totalMacs, top1_before: base, round_to: roundTo, variants });
