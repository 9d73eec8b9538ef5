/**
 * Before a training run: the model reads the data's images and scores at least its classes. The commands
 * check this with their flags in the message; a program calling trainModel met it as a LibTorch error in
 * the first step ("Target 9 is out of bounds", "mat1 and mat2 shapes cannot be multiplied"), or as a
 * model ONNX Runtime refused after the whole run.
 */
import { inputError, mismatchError, usageError } from '../errors.js';
import { checkImageSet, type ImageSet } from '../data/types.js';
import { dataInputs, type Graph } from '../onnx/graph.js';
import { isChannelsLast } from '../onnx/image-input.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { classScoreDims } from '../runtime/class-scores.js';

export function checkModelFitsData(graph: Graph, data: { train: ImageSet; test: ImageSet }, o: { file?: string; trainLimit?: number; testLimit?: number }): void {
  for (const [name, limit] of [['trainLimit', o.trainLimit], ['testLimit', o.testLimit]] as const) {
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw usageError(`${name} must be a whole number ≥ 1, got ${limit}`, `leave ${name} out to use every image`);
  }
  checkImageSet(data.train, 'training');
  checkImageSet(data.test, 'test');
  if (data.test.labels.length === 0) throw inputError({ where: `test images (${data.test.name})`, problem: 'there are none: every epoch ends with a test top-1, which needs some', fix: 'give a test set of at least one image' });
  const file = o.file ? { file: o.file } : {};
  // LibTorch runs a free-size model at any size: test images of another size would score it on them.
  if (data.test.imageShape.some((d, i) => d !== data.train.imageShape[i])) {
    throw inputError({
      where: `test images (${data.test.name})`,
      problem: `are ${data.test.imageShape.join('×')} but the training images are ${data.train.imageShape.join('×')} (C×H×W)`,
      fix: 'load both sets at the size the model is trained at',
    });
  }
  const shape = dataInputs(graph)[0]?.shape;
  if (shape?.length === 4) {
    const dims = isChannelsLast(shape) ? [shape[3], shape[1], shape[2]] : shape.slice(1);
    const image = data.train.imageShape;
    if (dims.some((d, i) => typeof d === 'number' && d !== image[i])) {
      throw mismatchError({
        ...file,
        problem: `the model takes ${dims.join('×')} images (C×H×W) but the training images are ${image.join('×')}`,
        fix: 'load the images at the model\'s size and channels (loadImageFolder\'s size and channels; slim train --image-size)',
      });
    }
  }
  const out = graph.outputs[0];
  let scores = out?.shape ? classScoreDims(out.shape)?.[1] : undefined;
  if (typeof scores !== 'number') {
    try {
      const dims = inferShapes(graph).types.get(out?.name ?? '')?.shape;
      scores = dims ? classScoreDims(dims)?.[1] : undefined;
    } catch {
      scores = undefined; // the plan's own errors name an op it cannot run
    }
  }
  const classes = Math.max(data.train.classes.length, data.test.classes.length);
  if (typeof scores === 'number' && scores < classes) {
    throw mismatchError({
      ...file,
      problem: `the model scores ${scores} classes but the data has ${classes} (${data.train.classes.slice(0, 8).join(', ')}${classes > 8 ? ', …' : ''})`,
      fix: 'give a model with a score for every class (a zoo model: its classes option; a pretrained one: a new head, as slim train --new-head makes)',
    });
  }
}
