// Train a narrow ResNet18 on CIFAR-10, remove half of its MACs by structured pruning, fine-tune it, and
// write both as inference models (BatchNorm folded).
//   npx tsx examples/train-prune.ts [epochs] [training images]
// Training runs in the LibTorch addon (`npm run build:native`); CIFAR-10 as in examples/quantize.ts.
import { buildZooModel, evaluateModel, foldBatchNorm, loadCifar10, measureModel, nativeAvailable, pruneStructured, trainModel, writeModel, type TrainProgress } from 'slimkit';

if (!nativeAvailable()) throw new Error('the training addon is not built: run `npm run build:native` in the slimkit folder');
const epochs = Number(process.argv[2] ?? 5);
const images = Number(process.argv[3] ?? 50_000);

const data = { train: await loadCifar10('train', { limit: images }), test: await loadCifar10('test', { limit: 2000 }) };
const report = (p: TrainProgress): void => {
  if (p.phase === 'train' && p.step === p.stepsPerEpoch) console.log(`epoch ${p.epoch + 1}/${p.epochs}: loss ${p.loss.toFixed(3)}, ${p.imagesPerSecond.toFixed(0)} img/s`);
};

const trained = await trainModel({ graph: buildZooModel('resnet18-cifar', { width: 0.25 }), data, epochs, batch: 128, onProgress: report });
const pruned = await pruneStructured(trained.graph, { target: { kind: 'macs', value: 0.5 } });
const tuned = await trainModel({ graph: pruned.graph, data, epochs: Math.max(1, Math.round(epochs / 2)), batch: 128, lr: 0.02, onProgress: report });

for (const [file, graph] of [['resnet18-w025.onnx', trained.graph], ['resnet18-w025-pruned.onnx', tuned.graph]] as const) {
  const model = foldBatchNorm(graph);
  await writeModel(model, file);
  const { top1 } = await evaluateModel(model, data.test);
  const { params, macs } = await measureModel(model);
  console.log(`${file}: top-1 ${(100 * top1).toFixed(2)} %, ${params} params, ${((macs ?? 0) / 1e6).toFixed(1)} M MACs`);
}
