/**
 * What distillation says about its teacher before the first step, in the words of the caller (slim
 * distill's flags, a recipe's keys): a teacher near chance teaches nothing, and one below a trained
 * student pulls it toward a weaker model's answers.
 */
import { formatPercent } from '../../report/format.js';

/** Near chance: below 1.5 × the share one class would score by guessing. */
export function teacherNearChance(top1: number, classes: number): boolean {
  return top1 < 1.5 / classes;
}

export function teacherNearChanceWarning(top1: number, testName: string): string {
  return `warning: the teacher scores ${formatPercent(top1)} on ${testName}, near chance: check that it was trained on this data with the student's preprocessing`;
}

/** `alpha`: how the caller names the weight of the labels ("--alpha", "alpha"). */
export function weakerTeacherWarning(teacher: number, student: number, testName: string, alpha = '--alpha'): string {
  return `warning: the teacher scores ${formatPercent(teacher)} on ${testName}, below the student's ${formatPercent(student)} before distillation: its soft targets pull the student toward a weaker model's answers — distill from a stronger teacher, or raise ${alpha} (1 trains on the labels alone)`;
}
