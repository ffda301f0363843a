/**
 * SQL for the gateway's consumers (`gateway_consumers`) and the token endpoint's jti ledger
 * (`gateway_assertion_jtis`): migrations/1733400000000_gateway-consumers.sql. Identifiers and public keys only.
 */
import type { JSONWebKeySet } from 'jose';
import type { Purpose } from '../fhir/classification.js';
import type { Queryable } from '../store/pool.js';

export type ConsumerStatus = 'active' | 'revoked';

export interface ConsumerRow {
  id: string;
  tenantId: string;
  purpose: Purpose;
  scopes: string[];
  jwksUrl: string | null;
  jwks: JSONWebKeySet | null;
  status: ConsumerStatus;
  ratePerMinute: number;
  rateBurst: number;
  createdAt: Date;
  statusChangedAt: Date;
}

interface Row {
  id: string;
  tenant_id: string;
  purpose: Purpose;
  scopes: string[];
  jwks_url: string | null;
  jwks: JSONWebKeySet | null;
  status: ConsumerStatus;
  rate_per_minute: number;
  rate_burst: number;
  created_at: Date;
  status_changed_at: Date;
}

const COLUMNS =
  'id, tenant_id, purpose, scopes, jwks_url, jwks, status, rate_per_minute, rate_burst, created_at, status_changed_at';

function toConsumer(r: Row): ConsumerRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    purpose: r.purpose,
    scopes: r.scopes,
    jwksUrl: r.jwks_url,
    jwks: r.jwks,
    status: r.status,
    ratePerMinute: r.rate_per_minute,
    rateBurst: r.rate_burst,
    createdAt: r.created_at,
    statusChangedAt: r.status_changed_at,
  };
}

export interface NewConsumerRow {
  id: string;
  tenantId: string;
  purpose: Purpose;
  scopes: string[];
  jwksUrl: string | null;
  jwks: JSONWebKeySet | null;
  ratePerMinute: number;
  rateBurst: number;
}

/** Inserts a consumer; undefined when the id is taken. */
export async function insertConsumer(db: Queryable, c: NewConsumerRow): Promise<ConsumerRow | undefined> {
  const res = await db.query<Row>(
    `INSERT INTO gateway_consumers (id, tenant_id, purpose, scopes, jwks_url, jwks, rate_per_minute, rate_burst)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      c.id,
      c.tenantId,
      c.purpose,
      c.scopes,
      c.jwksUrl,
      c.jwks === null ? null : JSON.stringify(c.jwks),
      c.ratePerMinute,
      c.rateBurst,
    ],
  );
  return res.rows[0] ? toConsumer(res.rows[0]) : undefined;
}

export async function readConsumer(
  db: Queryable,
  id: string,
  opts: { lock?: boolean } = {},
): Promise<ConsumerRow | undefined> {
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM gateway_consumers WHERE id = $1${opts.lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return res.rows[0] ? toConsumer(res.rows[0]) : undefined;
}

export async function listConsumerRows(db: Queryable, tenantId?: string): Promise<ConsumerRow[]> {
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM gateway_consumers WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY tenant_id, id`,
    [tenantId ?? null],
  );
  return res.rows.map(toConsumer);
}

export async function setConsumerStatus(db: Queryable, id: string, status: ConsumerStatus): Promise<void> {
  await db.query('UPDATE gateway_consumers SET status = $2, status_changed_at = now() WHERE id = $1', [id, status]);
}

export async function tenantIsRegistered(db: Queryable, tenantId: string): Promise<boolean> {
  const res = await db.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]);
  return (res.rowCount ?? 0) > 0;
}

/** Records an assertion's jti until it expires; false when it was seen before (a replay). */
export async function rememberJti(db: Queryable, consumerId: string, jti: string, expiresAt: Date): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO gateway_assertion_jtis (consumer_id, jti, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (consumer_id, jti) DO NOTHING`,
    [consumerId, jti, expiresAt],
  );
  return (res.rowCount ?? 0) === 1;
}

/**
 * Forgets jtis whose assertions expired more than `graceSeconds` ago (an expired assertion is refused on its
 * exp alone). Returns how many were removed.
 */
export async function sweepExpiredJtis(db: Queryable, graceSeconds: number): Promise<number> {
  const res = await db.query(
    `DELETE FROM gateway_assertion_jtis WHERE expires_at < now() - make_interval(secs => $1)`,
    [graceSeconds],
  );
  return res.rowCount ?? 0;
}
