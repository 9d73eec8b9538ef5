import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Hex digest of a file, streamed (the CIFAR-10 files are 30 MB each). */
export async function hashFile(file: string, algorithm: 'sha256' | 'md5' = 'sha256'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface MarkerEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

interface MarkerFile {
  version: 1;
  files: Record<string, MarkerEntry>;
}

/**
 * Remembers which files already matched a sha256, keyed by absolute path + size + mtime, so a 180 MB
 * data set is hashed once and not on every run. The marker is a JSON file in the cache folder; if
 * it cannot be read or written the files are simply hashed again.
 */
export class VerifiedMarker {
  constructor(readonly markerPath: string) {}

  /** The marker slimkit keeps in its cache folder. */
  static inCache(cacheDir: string): VerifiedMarker {
    return new VerifiedMarker(path.join(cacheDir, 'verified.json'));
  }

  /** sha256 of `file`, from the marker when size and mtime still match, else hashed now. */
  async sha256(file: string): Promise<string> {
    const abs = path.resolve(file);
    const stat = await fs.stat(abs);
    const known = (await this.read()).files[abs];
    if (known && known.size === stat.size && known.mtimeMs === stat.mtimeMs) return known.sha256;
    return hashFile(abs, 'sha256');
  }

  /** Records files that matched their expected hash (only those: a mismatch must be re-checked after a fix). */
  async remember(files: string[], sha256s: string[]): Promise<void> {
    try {
      const marker = await this.read();
      for (const [i, file] of files.entries()) {
        const abs = path.resolve(file);
        const stat = await fs.stat(abs);
        marker.files[abs] = { size: stat.size, mtimeMs: stat.mtimeMs, sha256: sha256s[i]! };
      }
      await fs.mkdir(path.dirname(this.markerPath), { recursive: true });
      const tmp = `${this.markerPath}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(marker, null, 1));
      await fs.rename(tmp, this.markerPath);
    } catch {
      // A read-only cache only costs a re-hash next time.
    }
  }

  private async read(): Promise<MarkerFile> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.markerPath, 'utf8')) as Partial<MarkerFile>;
      if (parsed.version === 1 && parsed.files && typeof parsed.files === 'object') return parsed as MarkerFile;
    } catch {
      // Missing or corrupt marker: start empty.
    }
    return { version: 1, files: {} };
  }
}
