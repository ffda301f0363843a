import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import type { Pool, Queryable } from './pool.js';
import { withTransaction } from './pool.js';

export interface Integration {
  id: string;
  tenantId: string;
  vendor: string;
  baseUrl: string;
  tokenUrl: string;
  clientId: string;
  signingAlg: 'RS384' | 'ES384';
  signingKid: string;
  publicJwk: Record<string, unknown>;
  /** Where the private key lives (`file:` or `env:`); the key itself is never in the database. */
  privateKeyRef: string;
  resourceTypes: ResourceType[];
  /** The declared purpose: fixes the allowed resource types and data classes (lib/fhir/classification.ts). */
  purpose: Purpose;
  status: IntegrationStatus;
  /** Bumped by revoke and restore: anything cached for an older generation is stale. */
  credentialGeneration: number;
  revokedAt: Date | null;
  createdAt: Date;
}

export type IntegrationStatus = 'active' | 'suspended' | 'revoked';

export type NewIntegration = Omit<Integration, 'status' | 'createdAt' | 'credentialGeneration' | 'revokedAt'>;

interface Row {
  id: string;
  tenant_id: string;
  vendor: string;
  base_url: string;
  token_url: string;
  client_id: string;
  signing_alg: 'RS384' | 'ES384';
  signing_kid: string;
  public_jwk: Record<string, unknown>;
  private_key_ref: string;
  resource_types: ResourceType[];
  purpose: Purpose;
  status: IntegrationStatus;
  credential_generation: number;
  revoked_at: Date | null;
  created_at: Date;
}

export function fromRow(r: Row): Integration {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    vendor: r.vendor,
    baseUrl: r.base_url,
    tokenUrl: r.token_url,
    clientId: r.client_id,
    signingAlg: r.signing_alg,
    signingKid: r.signing_kid,
    publicJwk: r.public_jwk,
    privateKeyRef: r.private_key_ref,
    resourceTypes: r.resource_types,
    purpose: r.purpose,
    status: r.status,
    credentialGeneration: r.credential_generation,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
  };
}

export async function createIntegration(pool: Pool, i: NewIntegration, ctx: AuditContext): Promise<Integration> {
  return withTransaction(pool, async (client) => {
    const res = await client.query<Row>(
      `INSERT INTO integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk, private_key_ref, resource_types, purpose)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING RETURNING *`,
      [i.id, i.tenantId, i.vendor, i.baseUrl, i.tokenUrl, i.clientId, i.signingAlg, i.signingKid, i.publicJwk, i.privateKeyRef, i.resourceTypes, i.purpose],
    );
    if (res.rowCount === 0) throw new ConflictError('integration', i.id);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'integration.registered',
        outcome: 'success',
        tenantId: i.tenantId,
        integrationId: i.id,
        details: { vendor: i.vendor, purpose: i.purpose, resourceTypes: i.resourceTypes, signingKid: i.signingKid, signingAlg: i.signingAlg },
      },
    ]);
    return fromRow(res.rows[0]!);
  });
}

export async function getIntegration(db: Queryable, id: string): Promise<Integration> {
  const res = await db.query<Row>('SELECT * FROM integrations WHERE id = $1', [id]);
  if (res.rowCount === 0) throw new NotFoundError('integration', id);
  return fromRow(res.rows[0]!);
}

export async function listIntegrations(db: Queryable, tenantId?: string): Promise<Integration[]> {
  const res = tenantId
    ? await db.query<Row>('SELECT * FROM integrations WHERE tenant_id = $1 ORDER BY id', [tenantId])
    : await db.query<Row>('SELECT * FROM integrations ORDER BY tenant_id, id');
  return res.rows.map(fromRow);
}
