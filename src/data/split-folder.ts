/**
 * A folder of class folders (flower_photos/daisy/…, as photos are usually collected) made into the
 * train/ + test/ layout training needs: a seeded, per-class share of each class's images held out,
 * the files hard-linked (no extra space; copied where links cannot be made). A split written once is
 * what every later command reads, so train, eval and calibration agree on which images were held out
 * — a split made on the fly inside each command would have to be remembered by all of them.
 */
import { copyFile, link, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { usageError } from '../errors.js';
import { Random } from '../util/random.js';
import type { FolderListing } from './image-folder.js';

export interface ClassSplit {
  name: string;
  train: string[];
  test: string[];
}

/**
 * Each class's images shuffled with `seed` and the first round(n · testFraction) held out — at least
 * one, and never all: a class of one image stays in train/ alone (its test images would be none).
 * Within each split the files keep their sorted order.
 */
export function planSplit(listing: Pick<FolderListing, 'classes' | 'files'>, testFraction: number, seed: number): ClassSplit[] {
  checkTestFraction(testFraction);
  const perClass = listing.classes.map(() => [] as string[]);
  for (const f of listing.files) perClass[f.label]!.push(f.file);
  // One generator per class, seeded from the class's name: adding a class leaves the others' splits as they were.
  return listing.classes.map((name, c) => {
    const files = perClass[c]!;
    const held = files.length < 2 ? 0 : Math.min(files.length - 1, Math.max(1, Math.round(files.length * testFraction)));
    const order = new Random(seed ^ nameHash(name)).permutation(files.length);
    const test = new Set(Array.from(order.subarray(0, held)));
    return { name, train: files.filter((_, i) => !test.has(i)), test: files.filter((_, i) => test.has(i)) };
  });
}

/** A share to hold out: strictly between 0 and 1 (`shown`: the value as the user wrote it). */
export function checkTestFraction(value: number, shown = String(value)): void {
  if (!(value > 0 && value < 1)) throw usageError(`--test-fraction must be between 0 and 1, got ${shown}`, 'pass e.g. --test-fraction 0.2 to hold out a fifth of each class');
}

/** FNV-1a of a class name: a per-class seed that does not depend on which other classes there are. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (const unit of Buffer.from(name, 'utf8')) h = Math.imul(h ^ unit, 0x01000193) >>> 0;
  return h;
}

export interface WrittenSplit {
  /** Files hard-linked, and copied (another disk, or a file system without links). */
  linked: number;
  copied: number;
}

/**
 * Writes `out/train/<class>/…` and `out/test/<class>/…` (each file's path under its class folder kept),
 * into a temporary folder beside `out` renamed into place at the end: an interrupted split leaves no
 * half-written `out` that a later command would train on.
 */
export async function writeSplit(source: string, classes: readonly ClassSplit[], out: string, o: { copy?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<WrittenSplit> {
  const staging = path.join(path.dirname(path.resolve(out)), `.${path.basename(path.resolve(out))}.partial-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  const total = classes.reduce((n, c) => n + c.train.length + c.test.length, 0);
  const written: WrittenSplit = { linked: 0, copied: 0 };
  let linksWork = !o.copy;
  try {
    for (const split of ['train', 'test'] as const) {
      for (const c of classes) {
        for (const file of c[split]) {
          const target = path.join(staging, split, c.name, path.relative(path.join(source, c.name), file));
          await mkdir(path.dirname(target), { recursive: true });
          if (linksWork) {
            try {
              await link(file, target);
              written.linked++;
              o.onProgress?.(written.linked + written.copied, total);
              continue;
            } catch (e) {
              // EXDEV: `out` is on another disk; EPERM/ENOTSUP: a file system without hard links. Copy from then on.
              if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
              linksWork = false;
            }
          }
          await copyFile(file, target);
          written.copied++;
          o.onProgress?.(written.linked + written.copied, total);
        }
      }
    }
    // An empty folder given as `out` is replaced; one with files in it was refused before.
    if (existsSync(out) && (await readdir(out)).length === 0) await rmdir(out);
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    await rename(staging, out);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return written;
}
