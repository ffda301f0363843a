import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { InfrastructureUnavailableError } from '../errors/index.js';

export type { Pool, PoolClient };

/** Queries run either on the pool or inside a transaction's client. */
export type Queryable = Pick<Pool, 'query'> | PoolClient;

export interface PoolOptions {
  /** Told (with the client detached) when an idle connection breaks; the pool replaces it on the next query. */
  onIdleError?: (err: Error) => void;
}

/**
 * A pool that survives a broken idle connection (a server restart, a failover, an operator's
 * pg_terminate_backend): pg-pool drops the connection and emits 'error', which without a listener
 * crashes the process — and the error it emits carries the pg client, password included, into
 * whatever prints the crash. The listener detaches the client first.
 */
export function createPool(databaseUrl: string, max = 10, options: PoolOptions = {}): Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, application_name: 'ehr-connectors' });
  pool.on('error', (err) => {
    detachPgClient(err);
    options.onIdleError?.(err);
  });
  return pool;
}

/**
 * Removes what pg attaches to an error beyond the server's report: pg-pool sets `err.client` on an
 * idle connection's error, and the client holds the connection parameters (password included, as
 * a non-enumerable property that error serialisers such as vitest's still walk). Returns `err`.
 */
export function detachPgClient<T>(err: T): T {
  if (err !== null && typeof err === 'object' && 'client' in err) delete (err as { client?: unknown }).client;
  return err;
}

export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Fails fast with a message that says what to do when PostgreSQL cannot be reached. */
export async function assertDatabaseReachable(pool: Pool, displayAddress: string): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new InfrastructureUnavailableError(
      'postgres',
      displayAddress,
      `${reason}. Start the embedded stack with \`ehrctl dev up\` or set DATABASE_URL to a reachable server.`,
    );
  }
}

/** host:port/db of a DATABASE_URL, without credentials, for messages. */
export function describeDatabaseUrl(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
