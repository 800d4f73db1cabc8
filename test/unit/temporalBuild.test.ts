import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEMPORAL_CLI_VERSION } from '../../src/temporal/cli';
import { TEMPORAL_SERVER_VERSION } from '../support/cluster/install';

/** The module the cluster tier builds the Temporal server in must pin the versions the rest of the project uses. */
describe('the Temporal build module', () => {
  const goMod = readFileSync(join(__dirname, '..', 'support', 'cluster', 'temporal-build', 'go.mod'), 'utf8');

  it('pins the CLI version the main tier installs, so the server reuses its compiled packages', () => {
    expect(goMod).toContain(`github.com/temporalio/cli ${TEMPORAL_CLI_VERSION}\n`);
  });

  it('pins the server version the cluster tier and docker-compose run', () => {
    expect(goMod).toContain(`go.temporal.io/server v${TEMPORAL_SERVER_VERSION}\n`);
  });

  it('asks for no Go toolchain newer than the CLI itself needs', () => {
    expect(goMod).toMatch(/^go 1\.25\.0$/m);
    expect(goMod).not.toMatch(/^toolchain /m);
  });
});
