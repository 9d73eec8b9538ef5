// Quantize a CIFAR-10 classifier to int8 and compare it with the float model it came from.
//   npx tsx examples/quantize.ts model.onnx [model.int8.onnx]
// CIFAR-10 is read from $SLIM_DATA_DIR, else downloaded once into ~/.cache/slimkit and checksummed.
import { evaluateModel, loadCifar10, measureModel, quantizeModel, readModel, writeModel } from 'slimkit';

const [input, output = input?.replace(/\.onnx$/, '') + '.int8.onnx'] = process.argv.slice(2);
if (!input) throw new Error('usage: examples/quantize.ts model.onnx [out.onnx]');

const float = await readModel(input);
const calibration = await loadCifar10('train', { limit: 5000 });
const test = await loadCifar10('test', { limit: 2000 });

const int8 = await quantizeModel(float, calibration);
await writeModel(int8.graph, output);
console.log(`${output}: ${int8.method} calibration on ${int8.calibrationImages} images, ${int8.quantizedNodes} nodes int8, ${int8.floatNodes.length} left float`);

for (const [name, graph] of [['fp32', float], ['int8', int8.graph]] as const) {
  const { top1 } = await evaluateModel(graph, test);
  const { sizeBytes, params, macs } = await measureModel(graph);
  console.log(`${name}: top-1 ${(100 * top1).toFixed(2)} % on ${test.labels.length} test images, ${(sizeBytes / 1024).toFixed(1)} KiB, ${params} params, ${macs} MACs`);
}
