/**
 * The real-Delta tier: the Databricks adapter through the real @databricks/sql driver against a
 * Spark Thrift Server with open-source Delta Lake (see test/realDelta/globalSetup.ts). Run by
 * `npm test` after the main suite; `npm run test:delta` runs it alone.
 */
const base = require('./jest.config.js');

// The Thrift server sends timestamps as zone-less text in its session time zone (UTC, see
// thriftServer.ts), where a warehouse sends Arrow timestamps: read them as UTC here too.
process.env.TZ = 'UTC';

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/realDelta/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: '<rootDir>/test/realDelta/globalSetup.ts',
  globalTeardown: '<rootDir>/test/realDelta/globalTeardown.ts',
};
