import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../src/temporal/devServer';

export interface Postgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Stops the server (fast shutdown) and waits for it. */
  stop(): void;
}

/**
 * A throw-away PostgreSQL cluster on loopback: initdb into `dir`, started with pg_ctl, with a
 * login role for the Temporal server. PostgreSQL refuses to run as root, so as root it runs as
 * the `postgres` user Debian's package creates.
 */
export async function startPostgres(options: { bin: string; dir: string; progress?: (message: string) => void }): Promise<Postgres> {
  const port = await freePort();
  const data = join(options.dir, 'data');
  mkdirSync(options.dir, { recursive: true });
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { uid, gid } = postgresUser();
    chownSync(options.dir, uid, gid);
  }
  const pg = (program: string, args: string[]) => {
    const command = asRoot ? 'runuser' : join(options.bin, program);
    const argv = asRoot ? ['-u', 'postgres', '--', join(options.bin, program), ...args] : args;
    const result = spawnSync(command, argv, { cwd: options.dir, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (exit ${result.status ?? result.signal}): ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  options.progress?.(`PostgreSQL: initdb and start on 127.0.0.1:${port}`);
  pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync']);
  pg('pg_ctl', ['-D', data, '-l', join(options.dir, 'postgres.log'), '-o', `-p ${port} -k ${options.dir} -h 127.0.0.1 -c fsync=off -c max_connections=200`, '-w', '-t', '60', 'start']);
  const user = 'temporal';
  const password = 'temporal';
  try {
    pg('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE ROLE ${user} LOGIN CREATEDB PASSWORD '${password}'`]);
  } catch (error) {
    pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    throw error;
  }
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    stop() {
      if (stopped) return;
      stopped = true;
      pg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    },
  };
}

function postgresUser(): { uid: number; gid: number } {
  const result = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const group = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error('no postgres user: PostgreSQL from Debian\'s packages creates it (run the cluster set-up)');
  return { uid: Number(result.stdout.trim()), gid: Number(group.stdout.trim()) };
}
