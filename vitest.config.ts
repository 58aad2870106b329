import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Simulation and process tests wait for conditions with their own deadlines;
    // this is only the outer safety net.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
