/**
 * The database side of the stored-secret-reference policy (migrations/1733200000000_stored-secret-refs.sql,
 * lib/config/stored-secret-refs.ts): the `secret_roots` table the SECURITY DEFINER functions check
 * references against (written only by the migration owner), the mapping of their refusals to
 * SecretRefRefusedError, and the audit event of a refusal.
 */
import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { SecretRefRule, StoredSecretPolicy, StoredSecretRef } from '../config/stored-secret-refs.js';
import { SECRET_REF_RULES, assertStoredSecretRefAllowed, storedSecretPolicy } from '../config/stored-secret-refs.js';
import { SecretRefRefusedError } from '../errors/index.js';
import type { Pool, Queryable } from './pool.js';
import { createPool, withTransaction } from './pool.js';

/** The policy the database enforces: its roots and exclusions (readable by the application role). */
export async function readStoredSecretPolicy(db: Queryable): Promise<StoredSecretPolicy> {
  const { rows } = await db.query<{ path: string; kind: 'root' | 'excluded' }>(
    'SELECT path, kind FROM secret_roots ORDER BY path',
  );
  return {
    roots: rows.filter((r) => r.kind === 'root').map((r) => r.path),
    excluded: rows.filter((r) => r.kind === 'excluded').map((r) => r.path),
  };
}

/**
 * Makes the `secret_roots` table equal to `policy` (run as the migration owner, after the migrations:
 * the application role cannot write it). Audited (`secret_roots.configured`) when it changed.
 */
export async function writeSecretRoots(
  ownerDatabaseUrl: string,
  policy: StoredSecretPolicy,
  actor = 'migrations',
): Promise<{ changed: boolean }> {
  const wanted = storedSecretPolicy(policy);
  const pool = createPool(ownerDatabaseUrl, 1);
  try {
    return await withTransaction(pool, async (client) => {
      await client.query('LOCK TABLE secret_roots IN EXCLUSIVE MODE');
      const current = await readStoredSecretPolicy(client);
      const same = (a: readonly string[], b: readonly string[]) =>
        [...a].sort().join('\0') === [...b].sort().join('\0');
      if (same(current.roots, wanted.roots) && same(current.excluded, wanted.excluded)) return { changed: false };
      await client.query('DELETE FROM secret_roots');
      await client.query(
        `INSERT INTO secret_roots (path, kind) SELECT path, 'root' FROM unnest($1::text[]) AS path
         UNION ALL SELECT path, 'excluded' FROM unnest($2::text[]) AS path`,
        [wanted.roots, wanted.excluded],
      );
      const details = { roots: wanted.roots, excluded: wanted.excluded };
      await appendAuditEvents(client, [
        { actor, correlationId: randomUUID(), action: 'secret_roots.configured', outcome: 'success', details },
      ]);
      return { changed: true };
    });
  } finally {
    await pool.end();
  }
}

/** The SecretRefRefusedError for a refusal raised by the database's definer functions, or undefined. */
export function secretRefRefusalFrom(err: unknown): SecretRefRefusedError | undefined {
  const e = err as { code?: string; constraint?: string; detail?: string; column?: string } | null;
  if (e?.code !== '23514' || e.constraint !== 'stored_secret_reference') return undefined;
  const rule = e.detail !== undefined && e.detail in SECRET_REF_RULES ? (e.detail as SecretRefRule) : 'not-a-reference';
  return new SecretRefRefusedError(
    e.column ?? 'secret reference',
    rule,
    `${SECRET_REF_RULES[rule]} (refused by the database)`,
  );
}

/** Runs a write through a definer function, turning its refusal into SecretRefRefusedError. */
export async function refusingStoredSecretRefs<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw secretRefRefusalFrom(err) ?? err;
  }
}

/** Where a refusal happened, for its audit event. */
export interface RefusalScope {
  stage: 'registration' | 'restore' | 'rotation' | 'use';
  tenantId?: string | null;
  integrationId?: string | null;
}

/** Records `secret_ref.refused` (field, rule, stage; never the reference). */
export async function auditSecretRefRefusal(
  pool: Pool,
  ctx: AuditContext,
  err: SecretRefRefusedError,
  scope: RefusalScope,
): Promise<void> {
  await recordAuditEvent(pool, {
    ...ctx,
    action: 'secret_ref.refused',
    outcome: 'failure',
    tenantId: scope.tenantId ?? null,
    integrationId: scope.integrationId ?? null,
    details: { field: err.field, rule: err.rule, stage: scope.stage },
  });
}

/** Runs `fn`; a SecretRefRefusedError it throws is audited, then thrown again. */
export async function auditingSecretRefRefusals<T>(
  pool: Pool,
  ctx: AuditContext,
  scope: RefusalScope,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SecretRefRefusedError) await auditSecretRefRefusal(pool, ctx, err, scope);
    throw err;
  }
}

/**
 * Checks references about to be stored (registration, restore, rotation) against the database's
 * policy, with realpath (the definer functions check again, lexically); a refusal is audited.
 */
export async function assertStoredSecretRefsAllowed(
  pool: Pool,
  ctx: AuditContext,
  refs: ReadonlyArray<StoredSecretRef>,
  scope: RefusalScope,
  policy?: StoredSecretPolicy,
): Promise<void> {
  if (refs.length === 0) return;
  await auditingSecretRefRefusals(pool, ctx, scope, async () => {
    const effective = policy ?? (await readStoredSecretPolicy(pool));
    for (const { field, ref } of refs) assertStoredSecretRefAllowed(ref, { field, policy: effective });
  });
}
