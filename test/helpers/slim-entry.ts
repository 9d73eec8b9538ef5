// Runs the `slim` CLI from the TypeScript sources (tests spawn this with tsx, so no build is needed).
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
