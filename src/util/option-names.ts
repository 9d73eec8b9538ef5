/**
 * The library's task functions take one options object. TypeScript refuses a misspelt option name; plain
 * JavaScript passed it on, and a missing required option failed deep inside as a TypeError ("Cannot read
 * properties of undefined (reading 'value')" from pruneStructured({ targetMacs })). Each function checks
 * the names it was given against its own list (a `satisfies Record<keyof Required<Options>, true>`
 * object, so the list cannot drift from the interface) and says what it takes.
 */
import { usageError } from '../errors.js';

export type OptionNames<T> = Record<keyof Required<T>, true>;

/** Refuses names `fn` does not take, suggesting the nearest one it does. */
export function checkOptionNames(fn: string, options: unknown, known: Readonly<Record<string, true>>): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw usageError(`${fn} takes an options object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`, `pass { ${Object.keys(known).slice(0, 3).join(', ')}, … }`);
  }
  const names = Object.keys(known);
  for (const key of Object.keys(options)) {
    if (key in known) continue;
    const near = nearest(key, names);
    throw usageError(`${fn} has no option '${key}'${near ? ` (did you mean '${near}'?)` : ''}`, `its options are ${names.join(', ')}`);
  }
}

/** The known name closest to `key` (case-insensitive edit distance, at most a third of its length), if any. */
function nearest(key: string, names: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diagonal = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const above = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length]!;
  };
  const scored = names.map((name) => ({ name, d: distance(key.toLowerCase(), name.toLowerCase()) })).sort((a, b) => a.d - b.d);
  const best = scored[0];
  // One name the start of the other counts too: targetMacs for target, batch for batchSize.
  const [k, starts] = [key.toLowerCase(), (a: string, b: string): boolean => b.length >= 4 && a.startsWith(b)];
  const prefix = names.find((name) => starts(k, name.toLowerCase()) || starts(name.toLowerCase(), k));
  return best && best.d <= Math.max(2, Math.floor(key.length / 3)) ? best.name : prefix;
}
