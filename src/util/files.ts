import { lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';

/** Whether two paths name the same file on disk: a hard link or another spelling of the path counts. */
export function sameFile(a: string, b: string): boolean {
  const stats = [a, b].map((p) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  });
  const [sa, sb] = stats;
  if (sa && sb) return sa.dev === sb.dev && sa.ino === sb.ino;
  return path.resolve(a) === path.resolve(b);
}

/** "a character device", "a pipe (FIFO)", "a socket", "a block device" — or undefined for a file, folder or link. */
export function specialFileKind(info: { isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string | undefined {
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isFIFO()) return 'a pipe (FIFO)';
  if (info.isSocket()) return 'a socket';
  return undefined;
}

/**
 * The file a write to `file` replaces: a symbolic link's target, through a chain of them, so that the
 * link stays a link (as `cp` and editors write through one; renaming onto the link replaced it with a
 * file and left the model it pointed at as it was; `slim deploy`'s bundle folder likewise). A loop is
 * left to fail where it is written.
 */
export function linkTarget(file: string): string {
  // Synchronous: a few lstat calls, and the CLI's path checks (before any work) need it too.
  let current = file;
  for (let hops = 0; hops < 40; hops++) {
    let link = false;
    try {
      link = lstatSync(current).isSymbolicLink();
    } catch {
      // Nothing there yet: a write creates it here.
    }
    if (!link) return current;
    current = path.resolve(path.dirname(current), readlinkSync(current));
  }
  return current;
}
