/**
 * A classifier's first output holds one score per class for each image: [N, classes], or — for a
 * fully convolutional head exported without a flatten (Conv 1×1 → global average pool) — [N, classes,
 * 1, 1], whose memory is laid out the same. Pure: the bundle's device code uses it too.
 */
import type { Dim } from '../onnx/graph.js';

/** [N, classes] of scores dims, or undefined when they are not class scores (a spatial map, a vector). */
export function classScoreDims<D extends Dim>(dims: readonly D[]): [D, D] | undefined {
  if (dims.length < 2 || dims.slice(2).some((d) => d !== 1)) return undefined;
  return [dims[0]!, dims[1]!];
}
