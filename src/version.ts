/** slimkit's version, reported by `slim --version` and written into exported models. */
export const VERSION = '0.1.0';
