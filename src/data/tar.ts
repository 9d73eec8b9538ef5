import { inputError } from '../errors.js';

/**
 * A small streaming reader for POSIX (ustar), GNU and pax tar archives — enough for the CIFAR-10
 * tarball, with no dependency. Entries are yielded whole (`data` holds a regular file's bytes), so
 * memory is bounded by the largest member, not the archive.
 */
export interface TarEntry {
  /** Path inside the archive, with pax / GNU long names applied. */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  /** Contents of a regular file; empty for other types. */
  data: Uint8Array;
}

const BLOCK = 512;

export async function* readTar(source: AsyncIterable<Uint8Array>, archiveName = 'tar archive'): AsyncGenerator<TarEntry> {
  const queue = new ByteQueue(source);
  let longName: string | undefined;
  let paxPath: string | undefined;
  for (;;) {
    const header = await queue.take(BLOCK);
    if (header === undefined) throw truncated(archiveName, 'end-of-archive marker');
    if (header.every((b) => b === 0)) return; // First of the two zero blocks that end an archive.
    checkHeaderChecksum(header, archiveName, queue.offset - BLOCK);

    const size = parseNumber(header.subarray(124, 136));
    const typeflag = String.fromCharCode(header[156]!);
    const data = size > 0 ? await queue.take(size) : new Uint8Array(0);
    if (data === undefined) throw truncated(archiveName, `the ${size}-byte member at byte ${queue.offset}`);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (padding > 0 && (await queue.take(padding)) === undefined) throw truncated(archiveName, 'member padding');

    if (typeflag === 'L') {
      longName = cString(data);
      continue;
    }
    if (typeflag === 'x') {
      paxPath = parsePax(data)['path'] ?? paxPath;
      continue;
    }
    if (typeflag === 'g') continue; // Global pax header: nothing we use.

    const name = paxPath ?? longName ?? headerName(header);
    longName = undefined;
    paxPath = undefined;
    const type = entryType(typeflag);
    const mode = parseNumber(header.subarray(100, 108));
    yield { name, type, size, mode, data: type === 'file' ? data : new Uint8Array(0) };
  }
}

function entryType(typeflag: string): TarEntry['type'] {
  if (typeflag === '0' || typeflag === '\0' || typeflag === '7') return 'file';
  if (typeflag === '5') return 'directory';
  if (typeflag === '1' || typeflag === '2') return 'symlink'; // Hard and symbolic links: never followed.
  return 'other';
}

function headerName(header: Uint8Array): string {
  const name = cString(header.subarray(0, 100));
  const isUstar = cString(header.subarray(257, 263)).startsWith('ustar');
  const prefix = isUstar ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** Octal text (NUL/space terminated), or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Uint8Array): number {
  if ((field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = cString(field).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checkHeaderChecksum(header: Uint8Array, archiveName: string, at: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  const stored = parseNumber(header.subarray(148, 156));
  if (sum !== stored) {
    throw inputError({
      file: archiveName,
      where: `header at byte ${at}`,
      problem: `tar header checksum is ${stored}, computed ${sum}: the archive is corrupt or not a tar file`,
      fix: 'delete it and download it again',
    });
  }
}

/** pax records: "<len> <key>=<value>\n". */
function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = new TextDecoder().decode(data);
  let i = 0;
  while (i < text.length) {
    const space = text.indexOf(' ', i);
    if (space < 0) break;
    const len = parseInt(text.slice(i, space), 10);
    if (!(len > 0)) break;
    const record = text.slice(space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function truncated(archiveName: string, what: string) {
  return inputError({
    file: archiveName,
    problem: `the archive ends early (missing ${what}): the download was cut short`,
    fix: 'delete it and download it again',
  });
}

/** Pulls exact byte counts out of a chunked stream. */
class ByteQueue {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes consumed so far (for error messages). */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Exactly n bytes, or undefined if the stream ends first. */
  async take(n: number): Promise<Uint8Array | undefined> {
    while (this.buffered < n) {
      const next = await this.iterator.next();
      if (next.done) return undefined;
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
    this.offset += n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // Common case: no copy.
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.buffered -= n;
    return out;
  }
}
