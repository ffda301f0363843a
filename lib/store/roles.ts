/**
 * Database roles (DESIGN §4 invariant 6, least privilege). The migrations create `ehr_app`, a NOLOGIN
 * role with full DML on the operational tables but only SELECT/INSERT on the audit tables (no UPDATE,
 * DELETE or TRUNCATE — enforced by privileges, so disabling the append-only triggers does not help it).
 * The application connects as a LOGIN role that is a member of `ehr_app`; the migration (owner) role
 * is for migrations and operators only.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { InvalidArgumentError } from '../errors/index.js';

export const APP_GROUP_ROLE = 'ehr_app';
/** The login role the product's processes use unless told otherwise (docker-compose.yml names it too). */
export const APP_LOGIN_ROLE = 'ehr_app_login';
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface AppLoginRoleOptions {
  /** Default APP_LOGIN_ROLE. */
  role?: string;
  /** Default: a new random password (the role's password is reset on every call then). */
  password?: string;
}

/**
 * Creates or updates (idempotently) a LOGIN role that is a member of `ehr_app` and inherits its
 * privileges, and returns `adminDatabaseUrl` rewritten to log in as it. Needs a role with CREATEROLE
 * (and ADMIN on ehr_app, e.g. a superuser) and the migrations applied (they create `ehr_app`).
 * The password is only ever in the returned URL: do not log it.
 */
export async function ensureAppLoginRole(adminDatabaseUrl: string, opts: AppLoginRoleOptions = {}): Promise<string> {
  const role = opts.role ?? APP_LOGIN_ROLE;
  const password = opts.password ?? randomBytes(24).toString('base64url');
  await withRoleAdmin(adminDatabaseUrl, role, async (client) => {
    const group = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_GROUP_ROLE]);
    if (group.rowCount === 0)
      throw new InvalidArgumentError('database', `role ${APP_GROUP_ROLE} does not exist: apply the migrations first`);
    await upsertLoginRole(client, role, 'NOCREATEDB', password);
    const member = await client.query(
      `SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE g.rolname = $1 AND u.rolname = $2`,
      [APP_GROUP_ROLE, role],
    );
    if (member.rowCount === 0)
      await client.query(`GRANT ${client.escapeIdentifier(APP_GROUP_ROLE)} TO ${client.escapeIdentifier(role)}`);
  });
  const url = new URL(adminDatabaseUrl);
  url.username = encodeURIComponent(role);
  url.password = encodeURIComponent(password);
  return url.toString();
}

/**
 * Creates or updates (idempotently) a LOGIN role that may create databases and nothing else of the
 * cluster's: no superuser, no role management, no membership in `ehr_app` (revoked if it had one).
 * For the Temporal server sharing the PostgreSQL server (docker-compose.yml), which creates and
 * owns its own databases and so never needs the product's owner or the superuser.
 */
export async function ensureDatabaseCreatorRole(
  adminDatabaseUrl: string,
  opts: { role: string; password: string },
): Promise<void> {
  await withRoleAdmin(adminDatabaseUrl, opts.role, async (client) => {
    await upsertLoginRole(client, opts.role, 'CREATEDB', opts.password);
    const group = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_GROUP_ROLE]);
    if (group.rowCount === 0) return;
    await client.query(`REVOKE ${client.escapeIdentifier(APP_GROUP_ROLE)} FROM ${client.escapeIdentifier(opts.role)}`);
  });
}

async function withRoleAdmin(
  adminDatabaseUrl: string,
  role: string,
  fn: (client: pg.Client) => Promise<void>,
): Promise<void> {
  if (!ROLE_NAME.test(role))
    throw new InvalidArgumentError('role name', 'use lowercase letters, digits and underscores');
  const client = new pg.Client({ connectionString: adminDatabaseUrl, application_name: 'ehr-connectors-roles' });
  // A connection that breaks between statements also fails the statement in flight; without a
  // listener the 'error' event would crash the process instead.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await fn(client);
  } catch (err) {
    // A pg error can quote the statement, and the statement holds the password: carry the code only.
    if (err instanceof InvalidArgumentError) throw err;
    const code = (err as { code?: string }).code;
    throw new Error(`could not ensure the login role ${role}: database error ${code ?? 'unknown'}`);
  } finally {
    await client.end();
  }
}

/** CREATE or ALTER: the attributes and the password are set either way (a changed secret takes effect). */
async function upsertLoginRole(
  client: pg.Client,
  role: string,
  createdb: 'CREATEDB' | 'NOCREATEDB',
  password: string,
): Promise<void> {
  const ident = client.escapeIdentifier(role);
  const literal = client.escapeLiteral(password);
  const attrs = `LOGIN NOSUPERUSER ${createdb} NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT`;
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount === 0) {
    try {
      await client.query(`CREATE ROLE ${ident} ${attrs} PASSWORD ${literal}`);
      return;
    } catch (err) {
      // CREATE ROLE races with another process doing the same: then ALTER it.
      if ((err as { code?: string }).code !== '42710') throw err; // duplicate_object
    }
  }
  await client.query(`ALTER ROLE ${ident} ${attrs} PASSWORD ${literal}`);
}

/** What the connected role is: a member of `ehr_app` (with USAGE), and whether it is a superuser. */
export async function connectedRoleStanding(
  client: pg.Client,
): Promise<{ member: boolean; superuser: boolean } | undefined> {
  const res = await client.query<{ member: boolean; superuser: boolean }>(
    `SELECT pg_has_role(current_user, $1, 'USAGE') AS member, rolsuper AS superuser FROM pg_roles
        WHERE rolname = current_user`,
    [APP_GROUP_ROLE],
  );
  return res.rows[0];
}
