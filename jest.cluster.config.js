/**
 * The cluster tier: the production topology's own binaries as processes (PostgreSQL, the Temporal
 * server built from source, Prometheus), installed by scripts/setup-cluster.ts. Each test file
 * starts and stops what it needs. Run by `npm test` after the real-Delta tier; `npm run
 * test:cluster` runs it alone.
 */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: undefined,
  globalTeardown: undefined,
  testTimeout: 300_000,
};
