/**
 * What every ehrctl command needs: validated configuration (the environment, falling back to a
 * running dev stack's settings), and lazily built PostgreSQL and Temporal clients with errors that
 * say which one is unreachable and how to fix it.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { AuditContext } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { loadConfig } from '../lib/config/schema.js';
import { readStackEnv } from '../dev/stack.js';
import { InfrastructureUnavailableError } from '../lib/errors/index.js';
import type { Pool } from '../lib/store/pool.js';
import { assertDatabaseReachable, createPool, describeDatabaseUrl } from '../lib/store/pool.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';

export class CliContext {
  private pool?: Pool;
  private connection?: Connection;
  readonly audit: AuditContext;

  constructor(
    readonly config: Config,
    readonly stackEnv: Record<string, string> | undefined,
  ) {
    this.audit = { actor: `cli:${os.userInfo().username}@${os.hostname()}`, correlationId: randomUUID() };
  }

  static load(): CliContext {
    const stackEnv = readStackEnv();
    return new CliContext(loadConfig({ ...stackEnv, ...process.env }), stackEnv);
  }

  async db(): Promise<Pool> {
    if (!this.pool) {
      const pool = createPool(this.config.DATABASE_URL, 4);
      await assertDatabaseReachable(pool, describeDatabaseUrl(this.config.DATABASE_URL));
      this.pool = pool;
    }
    return this.pool;
  }

  private async connect(): Promise<Connection> {
    if (!this.connection) {
      try {
        this.connection = await Connection.connect({
          address: this.config.TEMPORAL_ADDRESS,
          connectTimeout: '5 seconds',
        });
      } catch (err) {
        throw new InfrastructureUnavailableError(
          'temporal',
          this.config.TEMPORAL_ADDRESS,
          `${(err as Error).message}. Start the embedded stack with \`ehrctl dev up\` or set TEMPORAL_ADDRESS.`,
        );
      }
    }
    return this.connection;
  }

  /** Temporal client with the payload codec (DESIGN §4.2): inputs, signals and results are encrypted. */
  async temporal(): Promise<Client> {
    const connection = await this.connect();
    const codec = await openPayloadCodec(this.config, { pool: await this.db(), actor: this.audit.actor });
    return new Client({
      connection,
      namespace: this.config.TEMPORAL_NAMESPACE,
      dataConverter: { payloadCodecs: [codec] },
    });
  }

  /**
   * A Temporal client that does not decode payloads: histories as stored (audit history decodes via the codec
   * server).
   */
  async rawTemporal(): Promise<Client> {
    return new Client({ connection: await this.connect(), namespace: this.config.TEMPORAL_NAMESPACE });
  }

  /** A setting of the running dev stack (e.g. the sandbox URL), if one is running. */
  stack(name: string): string | undefined {
    return process.env[name] ?? this.stackEnv?.[name];
  }

  async close(): Promise<void> {
    await this.pool?.end();
    await this.connection?.close();
  }
}

/** Runs a command body with a context that is always closed. */
export async function withContext<T>(fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const ctx = CliContext.load();
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
