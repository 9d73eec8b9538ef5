import { SlimError } from '../errors.js';
import type { DeviceImageSet, EnginePlan } from './plan.js';

/**
 * Cached teacher logits: one eval-mode pass of the teacher over the (unaugmented) training images,
 * kept in JS memory (N × classes float32: 2 MB for CIFAR-10) and handed to each distillation step as
 * the batch's rows. The teacher then costs one forward per image for the whole run instead of one per
 * image per epoch; the price is that the student must see the same fixed images (no augmentation).
 */
export class TeacherLogits {
  private constructor(
    readonly logits: Float32Array,
    readonly count: number,
    readonly classes: number,
  ) {}

  static async compute(teacher: EnginePlan, data: DeviceImageSet, options: { batch?: number } = {}): Promise<TeacherLogits> {
    const r = await teacher.evaluate(data, { batch: options.batch ?? 512, logits: true });
    if (!r.logits || r.count === 0) throw new SlimError({ where: data.name, problem: 'the teacher produced no logits for the training set' });
    const classes = r.logits.length / r.count;
    if (!Number.isInteger(classes)) throw new SlimError({ where: data.name, problem: `the teacher's outputs (${r.logits.length} values for ${r.count} images) are not one row per image` });
    return new TeacherLogits(r.logits, r.count, classes);
  }

  /** The rows of `indices`, in order (B × classes). */
  rows(indices: Int32Array): Float32Array {
    const out = new Float32Array(indices.length * this.classes);
    indices.forEach((index, k) => {
      if (index < 0 || index >= this.count) throw new RangeError(`image ${index} is outside the cached teacher logits (0..${this.count - 1})`);
      out.set(this.logits.subarray(index * this.classes, (index + 1) * this.classes), k * this.classes);
    });
    return out;
  }
}
