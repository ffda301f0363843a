/**
 * The one-shot migration job (docker-compose.yml `migrate`), the only process with the database
 * owner's credentials: applies migrations/, then creates or updates the application's LOGIN role
 * (a member of `ehr_app`: full DML on operational tables, insert-only on the audit tables) with the
 * password from the services' pgpass file, logs in as it once to prove the services can, records the
 * secret roots stored secret references are checked against (as the services see them), and — when
 * configured — creates or updates the Temporal server's CREATEDB-only role. Idempotent: run it on
 * every deploy; a changed password file takes effect here. Configuration: lib/config/migrate-config.ts.
 */
import pg from 'pg';
import type { MigrateConfig } from '../lib/config/migrate-config.js';
import { loadMigrateConfig } from '../lib/config/migrate-config.js';
import { exitCodeForError } from '../lib/errors/exit-codes.js';
import { EhrError, InfrastructureUnavailableError } from '../lib/errors/index.js';
import { migrateUp } from '../lib/store/migrate.js';
import { writeSecretRoots } from '../lib/store/secret-roots.js';
import { describeDatabaseUrl } from '../lib/store/pool.js';
import {
  APP_GROUP_ROLE,
  connectedRoleStanding,
  ensureAppLoginRole,
  ensureDatabaseCreatorRole,
} from '../lib/store/roles.js';

export interface MigrateReport {
  applied: string[];
  appRole: string;
  temporalRole?: string;
}

export async function runMigrate(config: MigrateConfig): Promise<MigrateReport> {
  let applied: string[];
  try {
    applied = await migrateUp(config.ownerDatabaseUrl);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT') {
      const where = describeDatabaseUrl(config.ownerDatabaseUrl);
      throw new InfrastructureUnavailableError('postgres', where, `${code}. Is the postgresql service up?`);
    }
    throw err;
  }
  // Before any service starts: the definer functions refuse every file: reference until roots exist.
  await writeSecretRoots(config.ownerDatabaseUrl, config.secretRoots, 'migrate-job');
  await ensureAppLoginRole(config.ownerDatabaseUrl, { role: config.app.role, password: config.app.password });
  await assertAppRoleLogsIn(config);
  if (config.temporal) await ensureDatabaseCreatorRole(config.ownerDatabaseUrl, config.temporal);
  return { applied, appRole: config.app.role, ...(config.temporal ? { temporalRole: config.temporal.role } : {}) };
}

/** Logs in the way the services will (their URL, the password from their pgpass file) and checks what it got. */
async function assertAppRoleLogsIn(config: MigrateConfig): Promise<void> {
  const url = new URL(config.app.databaseUrl);
  url.password = encodeURIComponent(config.app.password);
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'ehr-connectors-migrate' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const row = await connectedRoleStanding(client);
    if (!row?.member || row.superuser) throw new Error(`${config.app.role} is not a plain member of ${APP_GROUP_ROLE}`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const where = describeDatabaseUrl(config.app.databaseUrl);
    throw new Error(
      `the application role ${config.app.role} cannot log in at ${where}: ${code ?? (err as Error).message}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

if (require.main === module) {
  Promise.resolve()
    .then(() => runMigrate(loadMigrateConfig()))
    .then(
      (report) => {
        process.stdout.write(
          `migrate: ${report.applied.length} migration(s) applied; application role ${report.appRole} ready` +
            `${report.temporalRole ? `; Temporal role ${report.temporalRole} ready` : ''}\n`,
        );
        process.exit(0);
      },
      (err: unknown) => {
        const message = err instanceof EhrError ? err.message : `failed: ${(err as Error)?.message ?? String(err)}`;
        process.stderr.write(`migrate: ${message}\n`);
        process.exit(exitCodeForError(err));
      },
    );
}
