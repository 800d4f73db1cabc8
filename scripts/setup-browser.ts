/**
 * Makes sure a Chromium for the Web UI tests (test/e2e/webUi.test.ts) is installed and prints its path.
 * Idempotent: a working /usr/bin/chromium is used as it is. Otherwise, as root on Debian/Ubuntu,
 * installs the distribution's `chromium` package with apt-get (Playwright's own browser download
 * is not used: it needs network access beyond the package registries).
 *
 *   tsx scripts/setup-browser.ts [--quiet]    (--quiet: no output unless it has to install or fails)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM_PATH = '/usr/bin/chromium';
const APT_LISTS = '/var/lib/apt/lists';
/** Package lists older than this are refreshed before installing (mirrors drop superseded .debs). */
const STALE_LISTS_MS = 7 * 24 * 3600 * 1000;

const quiet = process.argv.includes('--quiet');
const progress = (message: string) => {
  if (!quiet) console.error(`[setup-browser] ${message}`);
};

class BrowserSetupError extends Error {
  override name = 'BrowserSetupError';
}

/** `chromium --version`, or null when the binary is missing or does not start. */
function chromiumVersion(): string | null {
  if (!existsSync(CHROMIUM_PATH)) return null;
  const result = spawnSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 && result.stdout.trim() ? result.stdout.trim() : null;
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a command with its output shown (unless quiet); throws with the command line when it fails. */
function run(command: string, args: string[]): void {
  progress(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: quiet ? ['ignore', 'ignore', 'pipe'] : 'inherit',
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.status !== 0) {
    throw new BrowserSetupError(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}${result.stderr ? `:\n${result.stderr.trim()}` : ''}`);
  }
}

/** True when apt has no package lists, lists older than a week, or no candidate for chromium. */
function aptListsNeedUpdate(): boolean {
  const lists = existsSync(APT_LISTS) ? readdirSync(APT_LISTS).filter((name) => name.includes('_Packages')) : [];
  if (lists.length === 0) return true;
  // ctime, not mtime: apt stamps the files with the mirror's Last-Modified time.
  const newest = Math.max(...lists.map((name) => statSync(join(APT_LISTS, name)).ctimeMs));
  if (Date.now() - newest > STALE_LISTS_MS) return true;
  const policy = spawnSync('apt-cache', ['policy', 'chromium'], { encoding: 'utf8' });
  return !/Candidate:\s+(?!\(none\))\S+/.test(policy.stdout ?? '');
}

function installWithApt(): void {
  let updated = false;
  if (aptListsNeedUpdate()) {
    run('apt-get', ['update']);
    updated = true;
  }
  const install = () => run('apt-get', ['install', '-y', '--no-install-recommends', 'chromium']);
  try {
    install();
  } catch (error) {
    if (updated) throw error;
    // Lists looked fresh but the mirror may have moved on (404 on a .deb): refresh once and retry.
    progress('install failed; refreshing the package lists and trying once more');
    run('apt-get', ['update']);
    install();
  }
}

function main(): void {
  let version = chromiumVersion();
  if (!version) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!isRoot || !hasCommand('apt-get')) {
      throw new BrowserSetupError(
        `no working Chromium at ${CHROMIUM_PATH}, and it cannot be installed here (${isRoot ? 'apt-get not found' : 'not running as root'}). ` +
          `Install it yourself, e.g. \`sudo apt-get install --no-install-recommends chromium\` on Debian/Ubuntu, so that \`${CHROMIUM_PATH} --version\` works.`,
      );
    }
    // Said even with --quiet: an install takes minutes and should not look like a hang.
    console.error(`[setup-browser] no working Chromium at ${CHROMIUM_PATH}; installing the Debian package chromium (a few minutes the first time)`);
    installWithApt();
    version = chromiumVersion();
    if (!version) throw new BrowserSetupError(`apt-get installed chromium, but \`${CHROMIUM_PATH} --version\` still fails`);
  }
  progress(version);
  if (!quiet) console.log(CHROMIUM_PATH);
}

try {
  main();
} catch (error) {
  console.error(`[setup-browser] could not provide Chromium: ${(error as Error).message}`);
  process.exit(1);
}
