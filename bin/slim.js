#!/usr/bin/env node
// The `slim` CLI. Runs the compiled build (npm run build writes dist/).
import('../dist/cli/main.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    console.error('slim: the build is missing — run `npm run build` in the slimkit folder first');
    process.exit(2);
  }
  throw e;
});
