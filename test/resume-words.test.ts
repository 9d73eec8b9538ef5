/**
 * How a refused --resume names what differs: in the flags of the command whose checkpoint it is (a trial
 * was pointed to --alpha in slim quantize, --model in slim distill, and never to --freeze-backbone).
 */
import { describe, expect, it } from 'vitest';
import { describeDifference } from '../src/engine/resume.js';

describe('resume differences in words', () => {
  it("name each command's own flags, and a distillation switched off as such", () => {
    const teacher = { temperature: 4, alpha: 0.5 };
    expect(describeDifference('teacher', teacher, null, 'slim quantize --qat')).toBe('distillation from the float model (--no-distill): on then, off now');
    expect(describeDifference('teacher', null, teacher, 'slim prune')).toBe('distillation from the unpruned model (--distill): off then, on now');
    expect(describeDifference('startWeights', 'a', 'b', 'slim distill')).toBe('the student it starts from (--student, --width): other weights now');
    expect(describeDifference('frozen', undefined, 'abc', 'slim train')).toBe('frozen layers (--freeze, --freeze-backbone): none then');
    expect(describeDifference('params', 62, 2, 'slim train')).toBe('trained parameter tensors (--freeze, --freeze-backbone, --new-head): 62 then, 2 now');
    // Without a command, or for a setting the command has no word of its own for: the general words.
    expect(describeDifference('startWeights', 'a', 'b')).toBe('the model it starts from (--model, --width, --student): other weights now');
    expect(describeDifference('epochs', 1, 2, 'slim quantize --qat')).toBe('--epochs: 1 then, 2 now');
    expect(describeDifference('teacher', { temperature: 4, alpha: 0.5 }, { temperature: 3, alpha: 0.5 }, 'slim distill')).toBe('--temperature 4 then, 3 now');
  });
});
