/**
 * What to say when quantization-aware training ended below the int8 model it started from: a note when
 * the test images cannot tell the two apart, else a warning with what to do — in the words of the
 * caller (`slim quantize --qat`'s flags, a recipe's keys).
 */
import { formatPercent } from '../../report/format.js';

export interface QatVerdictWords {
  /** Where the better model comes from: "slim quantize without --qat writes the better model". */
  without: string;
  /** The learning rate's name: "--lr", "qat.lr". */
  lr: string;
  /** The epochs' name: "--epochs", "qat.epochs". */
  epochs: string;
  /** How to score on more test images: "--eval-limit". */
  evalMore: string;
}

export function qatBelowStartLine(after: number, start: number, images: number, lr: number | undefined, words: QatVerdictWords): string {
  const fewer = Math.round((start - after) * images);
  const scores = `${formatPercent(after)} against ${formatPercent(start)}: ${fewer} image${fewer === 1 ? '' : 's'} fewer of ${images.toLocaleString('en')}`;
  if (fewer < 5 || start - after < 0.005) return `note: QAT ended a little below the PTQ model it started from (${scores}), within what ${images.toLocaleString('en')} test images can tell apart — score both on more (${words.evalMore}) before choosing`;
  return `warning: QAT ended below the PTQ model it started from (${scores}): ${words.without}; or train again with a lower ${words.lr}${lr !== undefined ? ` than ${lr}` : ''}, fewer ${words.epochs} or more training images`;
}
