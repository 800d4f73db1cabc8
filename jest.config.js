/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // The real-Delta tier has its own server and config (jest.realdelta.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/realDelta/', '<rootDir>/test/cluster/'],
  // thrift (under @databricks/sql) requires uuid 13, which is ESM only: Node 20 loads it with
  // require(esm), jest's module loader cannot. The CommonJS build of uuid 11 has the same API.
  moduleNameMapper: { '^uuid$': '<rootDir>/node_modules/uuid/dist/cjs/index.js' },
  // One Temporal dev server and one workflow bundle for the whole run (see test/support/globalSetup.ts).
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 240_000,
  maxWorkers: 1,
};
