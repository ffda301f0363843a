/**
 * A new embedded cluster (postgres.ts): its superuser password, kept in a 0600 file and reused on later
 * starts, and initdb run as the server's user. Its own file because creating a cluster happens once per
 * data dir and has its own failures (a data dir in the way, a password file gone, initdb refusing), while
 * postgres.ts starts and stops the server every time.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DevSetupError } from './errors.js';
import { mkdirTraversable, type PostgresBinaries, type ServerUser } from './postgres-binaries.js';
import type { ClusterPlace } from './postgres-placement.js';
import { runToCompletion } from './postgres-process.js';
import type { ServerLog } from './postgres.js';
import { abortedReason, type StopList } from './stop-list.js';

/** The password of an existing cluster; its file missing means the cluster cannot be used. */
export function readPassword(passwordFile: string, place: ClusterPlace): string {
  try {
    return fs.readFileSync(passwordFile, 'utf8').trim();
  } catch {
    const where = place.linkedFrom ? `${place.dataDir} (and the link ${place.linkedFrom})` : place.dataDir;
    throw new DevSetupError(
      'PostgreSQL',
      `the cluster in ${place.dataDir} exists but its password file ${passwordFile} is missing`,
      `delete ${where} to start over (its data is lost)`,
    );
  }
}

/** A fresh password for a new cluster, written 0600; refuses a non-empty dir that holds no cluster. */
export function newPassword(dataDir: string, passwordFile: string): string {
  if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
    throw new DevSetupError(
      'PostgreSQL',
      `${dataDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION)`,
      `move ${dataDir} away or delete it`,
    );
  }
  const password = randomBytes(24).toString('hex');
  fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  fs.chmodSync(passwordFile, 0o600);
  return password;
}

interface InitOptions {
  binaries: PostgresBinaries;
  user: ServerUser | undefined;
  dataDir: string;
  password: string;
  fast: boolean;
  log: ServerLog;
  stops?: StopList;
  signal?: AbortSignal;
}

/** initdb as the server's user; the password reaches it through a 0600 file of that user's, removed afterwards. */
export async function initialise(o: InitOptions): Promise<void> {
  mkdirTraversable(path.dirname(o.dataDir));
  fs.mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const pwfile = path.join(
    path.dirname(o.dataDir),
    `.${path.basename(o.dataDir)}.pw-${randomBytes(6).toString('hex')}`,
  );
  fs.writeFileSync(pwfile, `${o.password}\n`, { mode: 0o600 });
  if (o.user) {
    fs.chownSync(o.dataDir, o.user.uid, o.user.gid);
    fs.chownSync(pwfile, o.user.uid, o.user.gid);
  }
  try {
    const args = [
      `--pgdata=${o.dataDir}`,
      '--auth=scram-sha-256',
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      // The same collation and character classes on every machine, whatever locales it has installed.
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
      ...(o.fast ? ['--no-sync'] : []),
    ];
    const result = await runToCompletion(o.binaries.initdb, args, {
      user: o.user,
      onOutput: (s) => o.log.write(s),
      timeoutMs: 300_000,
      stops: o.stops,
      signal: o.signal,
    });
    if (result.spawnError) {
      throw new DevSetupError(
        'PostgreSQL',
        `could not run ${o.binaries.initdb}${o.user ? ` as \`${o.user.name}\`` : ''}: ${result.spawnError.message}`,
        'check that the file exists and is executable; `npm ci` restores it',
      );
    }
    if (result.aborted) throw new DevSetupError('PostgreSQL', `initdb ${abortedReason(o.signal) ?? 'was stopped'}`);
    if (result.code !== 0) {
      throw new DevSetupError(
        'PostgreSQL',
        `initdb failed in ${o.dataDir} (exit ${result.code ?? result.signal}):\n${o.log.tail()}`,
        `delete ${o.dataDir} and start again; the log above says what initdb refused`,
      );
    }
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}
