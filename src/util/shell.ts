/**
 * Commands slimkit prints for the user to run (the report's re-measure line, a bundle's scp, the way
 * to go on): each word quoted where a POSIX shell would split or expand it, so a path with a space
 * pastes as one argument.
 */

/** `word` as the shell reads it back: bare when it is plain, else in single quotes. */
export function shellWord(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Words joined into a command line, each quoted where it needs it. */
export function shellCommand(words: readonly string[]): string {
  return words.map(shellWord).join(' ');
}
