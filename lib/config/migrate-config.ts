/**
 * Configuration of the one-shot migration job (workers/migrate.ts; the `migrate` service of
 * docker-compose.yml). It is the only process that holds the database owner's credentials: it applies
 * the migrations, then creates or updates the LOGIN role the worker, webhook receiver and codec
 * server connect as (a member of `ehr_app`), and — when asked — the Temporal server's own role.
 * Validated at startup like lib/config/schema.ts, with the same secret rules for database URLs.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import { pgpassPassword, pgpassTargetOf } from '../store/pgpass.js';
import { inlinePasswordProblem } from './schema.js';
import { parseSecretRef, resolveSecretSync } from './secrets.js';
import type { StoredSecretPolicy } from './stored-secret-refs.js';
import { storedSecretPolicy, storedSecretPolicyFromConfig } from './stored-secret-refs.js';

const ROLE = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lowercase role name (letters, digits, underscores)');

const migrateSchema = z.object({
  /** The application's URL as the services use it: its user is the login role to create or update. */
  EHR_APP_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/[a-z_][a-z0-9_]*@/, 'expected postgres://<role>@host/database, without a password'),
  /**
   * The services' pgpass file (0600): the app role's password is read from its line for
   * EHR_APP_DATABASE_URL, so that file is the one place the password is written.
   */
  EHR_APP_PGPASSFILE: z.string().min(1),
  /** The Temporal server's role (CREATEDB only), when it shares the PostgreSQL server. */
  /** As the services see them: the secret roots (EHR_SECRETS_DIR, EHR_SECRET_ROOTS) and the excluded KEK directory. */
  EHR_SECRETS_DIR: z.string().startsWith('/', 'expected an absolute path'),
  EHR_SECRET_ROOTS: z.string().optional(),
  EHR_KEK_DIR: z.string().startsWith('/', 'expected an absolute path'),
  EHR_TEMPORAL_DB_ROLE: ROLE.optional(),
  /**
   * Its password: `file:`/`env:` reference or the value itself (the Temporal image takes it from the
   * environment anyway).
   */
  EHR_TEMPORAL_DB_PASSWORD: z.string().min(1).optional(),
});

export interface MigrateConfig {
  /** The owner (migrations, role management). */
  ownerDatabaseUrl: string;
  app: { role: string; databaseUrl: string; password: string };
  /** Recorded in secret_roots; the services' password file is excluded as well as the owner's. */
  secretRoots: StoredSecretPolicy;
  temporal?: { role: string; password: string };
}

function parse(env: Record<string, string | undefined>): z.infer<typeof migrateSchema> {
  const picked = Object.fromEntries(Object.keys(migrateSchema.shape).flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
  const result = migrateSchema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || 'configuration';
    throw new ConfigError(field, picked[field] === undefined ? 'is required but not set' : issue.message);
  }
  return result.data;
}

function readAppPassword(file: string, databaseUrl: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new ConfigError('EHR_APP_PGPASSFILE', `${file} does not exist or cannot be read`);
  }
  // pg ignores a password file that others may read; refuse it here rather than set a password the services cannot use.
  if ((stat.mode & 0o077) !== 0) {
    throw new ConfigError(
      'EHR_APP_PGPASSFILE',
      `${file} has mode 0${(stat.mode & 0o777).toString(8)}; it must be 0600`,
    );
  }
  const target = pgpassTargetOf(databaseUrl);
  const password = pgpassPassword(fs.readFileSync(file, 'utf8'), target);
  if (!password) {
    throw new ConfigError(
      'EHR_APP_PGPASSFILE',
      `${file} has no line for ${target.host}:${target.port}:${target.database}:${target.user}`,
    );
  }
  return password;
}

/**
 * DATABASE_URL (the owner's) under the product's rules: a reference is resolved; no inline password for a
 * remote host.
 */
function ownerDatabaseUrl(env: Record<string, string | undefined>): string {
  const value = env.DATABASE_URL;
  if (!value) throw new ConfigError('DATABASE_URL', 'is required but not set');
  const reference = parseSecretRef(value) !== undefined;
  const url = reference ? resolveSecretSync(value, { field: 'DATABASE_URL', env }) : value;
  const via = reference ? ' (in the value its secret reference names)' : '';
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('DATABASE_URL', `expected a postgres:// URL${via}`);
  const problem = reference ? undefined : inlinePasswordProblem(url);
  if (problem) throw new ConfigError('DATABASE_URL', problem);
  return url;
}

export function loadMigrateConfig(env: Record<string, string | undefined> = process.env): MigrateConfig {
  const owner = ownerDatabaseUrl(env);
  const fields = parse(env);
  const appUrl = fields.EHR_APP_DATABASE_URL;
  const role = decodeURIComponent(new URL(appUrl).username);
  if (new URL(appUrl).password !== '') {
    throw new ConfigError('EHR_APP_DATABASE_URL', 'must not carry a password: it is read from EHR_APP_PGPASSFILE');
  }
  if (role === decodeURIComponent(new URL(owner).username)) {
    throw new ConfigError(
      'EHR_APP_DATABASE_URL',
      'names the owner of DATABASE_URL; the services need a role of their own',
    );
  }
  const config: MigrateConfig = {
    ownerDatabaseUrl: owner,
    app: { role, databaseUrl: appUrl, password: readAppPassword(fields.EHR_APP_PGPASSFILE, appUrl) },
    secretRoots: withExcluded(storedSecretPolicyFromConfig(fields, env), fields.EHR_APP_PGPASSFILE),
  };
  if (fields.EHR_TEMPORAL_DB_ROLE || fields.EHR_TEMPORAL_DB_PASSWORD) {
    if (!fields.EHR_TEMPORAL_DB_ROLE || !fields.EHR_TEMPORAL_DB_PASSWORD) {
      const missing = fields.EHR_TEMPORAL_DB_ROLE ? 'EHR_TEMPORAL_DB_PASSWORD' : 'EHR_TEMPORAL_DB_ROLE';
      throw new ConfigError(missing, 'is required with the other EHR_TEMPORAL_DB_ field');
    }
    const value = fields.EHR_TEMPORAL_DB_PASSWORD;
    const scheme = parseSecretRef(value)?.scheme;
    const password =
      scheme === 'file' || scheme === 'env'
        ? resolveSecretSync(value, { field: 'EHR_TEMPORAL_DB_PASSWORD', env })
        : value;
    config.temporal = { role: fields.EHR_TEMPORAL_DB_ROLE, password };
  }
  return config;
}

function withExcluded(policy: StoredSecretPolicy, extra: string): StoredSecretPolicy {
  return storedSecretPolicy({ roots: policy.roots, excluded: [...policy.excluded, extra] });
}
