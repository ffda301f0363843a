/**
 * An integration's client-assertion key pairs and their rotation states
 * (migrations/1732900002000_integration-signing-keys.sql). Only public JWKs and secret references
 * live here; private keys stay in their 0600 files. The integrations row mirrors the current key.
 */
import type { PoolClient, Queryable } from '../store/pool.js';
import { refusingStoredSecretRefs } from '../store/secret-roots.js';

export type SigningKeyState = 'successor' | 'current' | 'previous' | 'retired';
/** States whose public key our JWKS publishes. */
export const PUBLISHED_STATES: readonly SigningKeyState[] = ['successor', 'current', 'previous'];

export interface IntegrationSigningKey {
  integrationId: string;
  kid: string;
  alg: 'RS384' | 'ES384';
  publicJwk: Record<string, unknown>;
  privateKeyRef: string;
  state: SigningKeyState;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
}

interface Row {
  integration_id: string;
  kid: string;
  alg: 'RS384' | 'ES384';
  public_jwk: Record<string, unknown>;
  private_key_ref: string;
  state: SigningKeyState;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
}

function fromRow(r: Row): IntegrationSigningKey {
  return {
    integrationId: r.integration_id,
    kid: r.kid,
    alg: r.alg,
    publicJwk: r.public_jwk,
    privateKeyRef: r.private_key_ref,
    state: r.state,
    createdAt: r.created_at,
    activatedAt: r.activated_at,
    retiredAt: r.retired_at,
  };
}

export async function listSigningKeys(db: Queryable, integrationId: string): Promise<IntegrationSigningKey[]> {
  const res = await db.query<Row>(
    'SELECT * FROM integration_signing_keys WHERE integration_id = $1 ORDER BY created_at, kid',
    [integrationId],
  );
  return res.rows.map(fromRow);
}

/**
 * What our JWKS publishes for an integration: undefined for an unknown integration; no keys at all
 * while it is revoked or suspended (a vendor that refetches stops accepting a possibly leaked key).
 */
export async function publishedSigningKeys(
  db: Queryable,
  integrationId: string,
): Promise<{ vendor: string; keys: IntegrationSigningKey[] } | undefined> {
  const integration = await db.query<{ vendor: string; status: string }>(
    'SELECT vendor, status FROM integrations WHERE id = $1',
    [integrationId],
  );
  const row = integration.rows[0];
  if (!row) return undefined;
  if (row.status !== 'active') return { vendor: row.vendor, keys: [] };
  const res = await db.query<Row>(
    'SELECT * FROM integration_signing_keys WHERE integration_id = $1 AND state = ANY($2) ORDER BY created_at, kid',
    [integrationId, PUBLISHED_STATES],
  );
  return { vendor: row.vendor, keys: res.rows.map(fromRow) };
}

/** Through the database function add_integration_signing_key, which checks the private key's reference. */
export async function insertSigningKey(
  db: Queryable,
  key: Omit<IntegrationSigningKey, 'createdAt' | 'activatedAt' | 'retiredAt'>,
): Promise<void> {
  await refusingStoredSecretRefs(() =>
    db.query('SELECT add_integration_signing_key($1, $2, $3, $4, $5, $6)', [
      key.integrationId,
      key.kid,
      key.alg,
      key.publicJwk,
      key.privateKeyRef,
      key.state,
    ]),
  );
}

export async function setSigningKeyState(
  db: Queryable,
  integrationId: string,
  kid: string,
  state: SigningKeyState,
): Promise<void> {
  await db.query(
    `UPDATE integration_signing_keys
        SET state = $3,
            activated_at = CASE WHEN $3 = 'current' THEN now() ELSE activated_at END,
            retired_at = CASE WHEN $3 = 'retired' THEN now() ELSE retired_at END
      WHERE integration_id = $1 AND kid = $2`,
    [integrationId, kid, state],
  );
}

/** Retires every key of an integration except `keepKid` (restore after revocation: old keys are dead). */
export async function retireAllSigningKeys(db: Queryable, integrationId: string): Promise<string[]> {
  const res = await db.query<{ kid: string }>(
    `UPDATE integration_signing_keys SET state = 'retired', retired_at = now()
      WHERE integration_id = $1 AND state <> 'retired' RETURNING kid`,
    [integrationId],
  );
  return res.rows.map((r) => r.kid);
}

/**
 * Keeps the integrations row's key columns equal to the current key: the database function copies
 * them from integration_signing_keys (the key must already be `current` there), so no reference is
 * written by the application.
 */
export async function mirrorCurrentKey(
  db: Queryable,
  key: Pick<IntegrationSigningKey, 'integrationId' | 'kid'>,
): Promise<void> {
  await db.query('SELECT mirror_current_signing_key($1, $2)', [key.integrationId, key.kid]);
}

/**
 * Locks the integration row before its keys change (rotation steps, rollback): its tenant and auth
 * method, or undefined for an unknown integration.
 */
export async function lockKeyOwner(
  client: PoolClient,
  integrationId: string,
): Promise<{ tenantId: string; authMethod: string } | undefined> {
  const res = await client.query<{ tenant_id: string; auth_method: string }>(
    'SELECT tenant_id, auth_method FROM integrations WHERE id = $1 FOR UPDATE',
    [integrationId],
  );
  const row = res.rows[0];
  return row ? { tenantId: row.tenant_id, authMethod: row.auth_method } : undefined;
}
