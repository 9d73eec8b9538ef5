/**
 * A labelled image set read a chunk at a time. An image folder's split can be far larger than memory
 * decoded (ImageNet's 50,000 validation images are 7.0 GiB at 224×224; one set stops at 4 GiB), but
 * scoring a model needs each image once, in order: a source decodes the next chunk while the current
 * one is scored, so memory holds two chunks whatever the folder's size.
 */
import { decodeListing, listImageFolder, maxSetBytes, unreadableImages, type DecodeOptions, type FolderListing, type LoadImageFolderOptions, type SkippedImage } from './image-folder.js';
import type { ImageSet } from './types.js';
import { subset } from './subsets.js';

export interface ImageSource {
  /** e.g. "cifar10/test" or the folder path. */
  name: string;
  /** Class names, index = label. */
  classes: string[];
  /** [C, H, W] of each image. */
  imageShape: [number, number, number];
  /** Images in all chunks together. */
  count: number;
  /**
   * The images in order, as sets of at most one chunk each. `limit`: the reader wants the first N only
   * — a source may stop after them (one read from files decodes none past them); it may also yield more.
   */
  chunks(o?: { limit?: number }): AsyncIterable<SourceChunk>;
}

/**
 * One chunk's images. `skipped`: the source's images this chunk stands for but left out (unreadable,
 * with skipBad), so a reader can count its way through the source's `count` (a progress bar's total).
 */
export type SourceChunk = ImageSet & { skipped?: readonly SkippedImage[] };

/** Bytes of decoded pixels per chunk: 1,783 images at 224×224 RGB, 87,381 at 32×32. */
export const CHUNK_BYTES = 256 * 2 ** 20;

/**
 * The most decoded bytes a command holds of a split it scores several times (quantize, bench): one
 * set's limit, and never past 4 GiB (Node 22 lifts that limit; a larger split is read a chunk at a time).
 */
export function maxHeldBytes(): number {
  return Math.min(maxSetBytes(), 4 * 2 ** 30);
}

/** A set already in memory, as one chunk. */
export function sourceOfSet(set: ImageSet): ImageSource {
  return {
    name: set.name,
    classes: set.classes,
    imageShape: set.imageShape,
    count: set.labels.length,
    async *chunks() {
      yield set;
    },
  };
}

/**
 * Every other image of a source's first `limit` (all when absent): part 0 the 1st, 3rd, …; part 1 the
 * 2nd, 4th, … Two disjoint halves read a chunk at a time as the source is, each with every class in
 * proportion even when the source lists one class after another (an image folder). Images the source
 * skipped (unreadable) are in neither half's count.
 */
export function interleavedHalf(source: ImageSource, part: 0 | 1, limit?: number): ImageSource {
  const wanted = Math.min(source.count, limit ?? source.count);
  return {
    name: `${source.name}[half ${part + 1} of 2]`,
    classes: source.classes,
    imageShape: source.imageShape,
    count: part === 0 ? Math.ceil(wanted / 2) : Math.floor(wanted / 2),
    async *chunks() {
      let position = 0;
      for await (const chunk of source.chunks({ limit: wanted })) {
        const n = Math.min(chunk.labels.length, wanted - position);
        const first = (position + part) % 2 === 0 ? 0 : 1;
        const taken = first >= n ? 0 : Math.ceil((n - first) / 2);
        position += n;
        if (taken > 0) yield subset(chunk, Uint32Array.from({ length: taken }, (_, k) => first + 2 * k), chunk.name);
        if (position >= wanted) return;
      }
    },
  };
}

export interface FolderSourceOptions extends Omit<DecodeOptions, 'onProgress'> {
  /** Decoded bytes per chunk (default CHUNK_BYTES). */
  chunkBytes?: number;
}

/**
 * A listed folder decoded chunk by chunk. Unreadable images fail the read, all named at once, as a
 * whole-folder load does: once one is met no further chunk is yielded, and the rest are only decoded
 * to find the others (skipBad: they are left out instead).
 */
export function folderSource(listing: FolderListing, options: FolderSourceOptions = {}): ImageSource {
  const [height, width] = options.size ?? [32, 32];
  const channels = options.channels ?? 3;
  const perChunk = Math.max(1, Math.floor((options.chunkBytes ?? CHUNK_BYTES) / (channels * height * width)));
  const count = listing.files.length;
  const { chunkBytes: _bytes, ...decode } = options;
  const decodeChunk = (k: number, wanted: number, cancelled: () => boolean) => decodeListing(listing, { ...decode, skipBad: true, cancelled }, { from: k * perChunk, to: Math.min((k + 1) * perChunk, wanted) });
  return {
    name: listing.name,
    classes: listing.classes,
    imageShape: [channels, height, width],
    count,
    async *chunks(o: { limit?: number } = {}) {
      const wanted = Math.min(count, o.limit ?? count);
      const chunkCount = Math.ceil(wanted / perChunk);
      const bad: SkippedImage[] = [];
      // Set when the reader stops early (a limit, an error): the chunk decoding ahead starts no more files.
      let stopped = false;
      const cancelled = () => stopped;
      let next = chunkCount > 0 ? decodeChunk(0, wanted, cancelled) : undefined;
      try {
        for (let k = 0; k < chunkCount; k++) {
          const chunk = await next!;
          next = k + 1 < chunkCount ? decodeChunk(k + 1, wanted, cancelled) : undefined;
          // Awaited on the next turn; until then a failure must not be an unhandled rejection.
          next?.catch(() => undefined);
          bad.push(...chunk.skipped);
          if (bad.length > 0 && !options.skipBad) continue;
          yield chunk;
        }
      } finally {
        stopped = true;
      }
      if (bad.length > 0 && !options.skipBad) throw unreadableImages(listing.name, bad);
    },
  };
}

/**
 * An image folder (loadImageFolder's layout and options) to be read once, a chunk at a time: for scoring
 * a folder of any size in bounded memory (evaluateModel, `slim eval` take it).
 */
export async function openImageFolder(dir: string, options: Omit<LoadImageFolderOptions, 'onProgress'> & { chunkBytes?: number } = {}): Promise<ImageSource> {
  return folderSource(await listImageFolder(dir, options), options);
}
