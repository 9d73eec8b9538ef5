#!/usr/bin/env node
// The `slim` CLI. Runs the compiled build (`npm run build` writes dist/).
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist')) {
    console.error('slim: the build is missing — run `npm run build` in the slimkit folder first');
    process.exit(2);
  }
  throw e;
}
process.exitCode = await cli.main(process.argv);
