import os from 'node:os';
import path from 'node:path';

/**
 * slimkit's cache folder: the option → env SLIM_CACHE_DIR → $XDG_CACHE_HOME/slimkit → ~/.cache/slimkit.
 * Downloads and "already verified" markers live here, never in a user's data folder (which may be read-only).
 */
export function slimCacheDir(option?: string): string {
  if (option) return path.resolve(option);
  const env = process.env['SLIM_CACHE_DIR'];
  if (env) return path.resolve(env);
  const xdg = process.env['XDG_CACHE_HOME'];
  if (xdg) return path.join(path.resolve(xdg), 'slimkit');
  return path.join(os.homedir(), '.cache', 'slimkit');
}
