/**
 * Imported first by the engine tests. vitest runs two test files at once on CI's two cores, so each
 * process's OpenMP team would spin-wait for cores the other process holds; passive waiting (read by
 * libgomp when the addon loads LibTorch) halves the suite's time. Benchmarks keep the default.
 */
process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
