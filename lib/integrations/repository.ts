import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { ReadOptions, ReadStrategy, ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import type { TokenAuthMethod } from '../vendors/profiles/types.js';
import type { VendorTlsRefs } from '../vendors/tls-options.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { refusingStoredSecretRefs } from '../store/secret-roots.js';

export interface Integration {
  id: string;
  tenantId: string;
  vendor: string;
  baseUrl: string;
  /** null: auth method none (no token endpoint). */
  tokenUrl: string | null;
  /** null: not yet issued by the vendor (status pending-client-id), or auth method none. */
  clientId: string | null;
  /** How the integration authenticates at the token endpoint (lib/vendors/profiles/types.ts). */
  authMethod: TokenAuthMethod;
  /** private_key_jwt only (null otherwise). */
  signingAlg: 'RS384' | 'ES384' | null;
  signingKid: string | null;
  publicJwk: Record<string, unknown> | null;
  /** Where the private key lives (`file:` or `env:`); the key itself is never in the database. */
  privateKeyRef: string | null;
  /** client_secret_basic/post: a secret reference (lib/config/secrets.ts); never the secret. */
  clientSecretRef: string | null;
  /** Vendor CA and client certificate references (mTLS, tls_client_auth); null: system roots, no client cert. */
  tlsRefs: VendorTlsRefs | null;
  /** The vendor profile's extra parameters (practice id, site id …); not secrets, not PHI. */
  vendorParams: Record<string, string>;
  resourceTypes: ResourceType[];
  /** The declared purpose: fixes the allowed resource types and data classes (lib/fhir/classification.ts). */
  purpose: Purpose;
  status: IntegrationStatus;
  /** Bumped by revoke and restore: anything cached for an older generation is stale. */
  credentialGeneration: number;
  revokedAt: Date | null;
  createdAt: Date;
  /**
   * The compensating controls as this integration's settings (lib/integrations/settings.ts); null: registered
   * before they were stored.
   */
  syncIntervalHours: number | null;
  credentialRotationDays: number | null;
  credentialRotatedAt: Date;
  settingsOverrides: SettingsOverrides;
  /** null: the vendor profile's default (lib/sync/read-strategy.ts `readStrategyOf`). */
  readStrategy: ReadStrategy | null;
  readOptions: ReadOptions;
  /** Hosts besides the vendor's own that may serve Bulk Data output files (set only through owner functions). */
  bulkFileHosts: string[];
}

/** Who changed a setting away from its registration default, when and why. */
export type SettingsOverrides = Partial<
  Record<
    'syncIntervalHours' | 'credentialRotationDays',
    { by: string; at: string; reason: string; from: number | null }
  >
>;

/** pending-client-id: registered before the vendor issued a client id; refused until `integrations update`. */
export type IntegrationStatus = 'active' | 'suspended' | 'revoked' | 'pending-client-id';

type Defaulted =
  | 'authMethod'
  | 'clientSecretRef'
  | 'tlsRefs'
  | 'vendorParams'
  | 'syncIntervalHours'
  | 'credentialRotationDays'
  | 'readStrategy'
  | 'readOptions'
  | 'bulkFileHosts';
type Managed =
  'status' | 'createdAt' | 'credentialGeneration' | 'revokedAt' | 'credentialRotatedAt' | 'settingsOverrides';
export type NewIntegration = Omit<Integration, Managed | Defaulted> & Partial<Pick<Integration, Defaulted>>;

interface Row {
  id: string;
  tenant_id: string;
  vendor: string;
  base_url: string;
  token_url: string | null;
  client_id: string | null;
  auth_method: TokenAuthMethod;
  signing_alg: 'RS384' | 'ES384' | null;
  signing_kid: string | null;
  public_jwk: Record<string, unknown> | null;
  private_key_ref: string | null;
  client_secret_ref: string | null;
  tls_refs: VendorTlsRefs | null;
  vendor_params: Record<string, string>;
  resource_types: ResourceType[];
  purpose: Purpose;
  status: IntegrationStatus;
  credential_generation: number;
  revoked_at: Date | null;
  created_at: Date;
  sync_interval_hours: number | null;
  credential_rotation_days: number | null;
  credential_rotated_at: Date;
  settings_overrides: SettingsOverrides;
  read_strategy: ReadStrategy | null;
  read_options: ReadOptions | null;
  bulk_file_hosts: string[] | null;
}

export function fromRow(r: Row): Integration {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    vendor: r.vendor,
    baseUrl: r.base_url,
    tokenUrl: r.token_url,
    clientId: r.client_id,
    authMethod: r.auth_method,
    signingAlg: r.signing_alg,
    signingKid: r.signing_kid,
    publicJwk: r.public_jwk,
    privateKeyRef: r.private_key_ref,
    clientSecretRef: r.client_secret_ref,
    tlsRefs: r.tls_refs,
    vendorParams: r.vendor_params,
    resourceTypes: r.resource_types,
    purpose: r.purpose,
    status: r.status,
    credentialGeneration: r.credential_generation,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
    syncIntervalHours: r.sync_interval_hours,
    credentialRotationDays: r.credential_rotation_days,
    credentialRotatedAt: r.credential_rotated_at,
    settingsOverrides: r.settings_overrides ?? {},
    readStrategy: r.read_strategy ?? null,
    readOptions: r.read_options ?? {},
    bulkFileHosts: r.bulk_file_hosts ?? [],
  };
}

/**
 * Stores a new integration with its audit event. The row is written by the database function
 * register_integration (the application role may not INSERT integrations itself), which refuses a
 * secret reference outside the stored-reference policy (SecretRefRefusedError).
 */
export async function createIntegration(
  pool: Pool,
  i: NewIntegration,
  ctx: AuditContext,
  extraDetails: Record<string, unknown> = {},
): Promise<Integration> {
  return withTransaction(pool, async (client) => {
    const res = await refusingStoredSecretRefs(() =>
      client.query<Row>(
        'SELECT * FROM register_integration($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)',
        [
          i.id,
          i.tenantId,
          i.vendor,
          i.baseUrl,
          i.tokenUrl,
          i.clientId,
          i.signingAlg,
          i.signingKid,
          i.publicJwk,
          i.privateKeyRef,
          i.resourceTypes,
          i.purpose,
          i.authMethod ?? 'private_key_jwt',
          i.clientSecretRef ?? null,
          i.tlsRefs ?? null,
          i.vendorParams ?? {},
        ],
      ),
    );
    if (res.rowCount === 0) throw new ConflictError('integration', i.id);
    // Settings are not secret references: the application role writes them itself (column grants).
    const settled = await client.query<Row>(
      `UPDATE integrations SET sync_interval_hours = $2, credential_rotation_days = $3, read_strategy = $4,
         read_options = $5 WHERE id = $1 RETURNING *`,
      [
        i.id,
        i.syncIntervalHours ?? null,
        i.credentialRotationDays ?? null,
        i.readStrategy ?? null,
        i.readOptions ?? {},
      ],
    );
    // File hosts decide where downloads (and maybe a bearer token) go: only the owner's function writes them.
    if (i.bulkFileHosts && i.bulkFileHosts.length > 0)
      await client.query('SELECT 1 FROM update_integration_endpoints($1, NULL, NULL, NULL, $2)', [
        i.id,
        i.bulkFileHosts,
      ]);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'integration.registered',
        outcome: 'success',
        tenantId: i.tenantId,
        integrationId: i.id,
        details: {
          vendor: i.vendor,
          purpose: i.purpose,
          resourceTypes: i.resourceTypes,
          authMethod: i.authMethod ?? 'private_key_jwt',
          ...(i.signingKid ? { signingKid: i.signingKid, signingAlg: i.signingAlg } : {}),
          ...(i.syncIntervalHours ? { syncIntervalHours: i.syncIntervalHours } : {}),
          ...(i.credentialRotationDays ? { credentialRotationDays: i.credentialRotationDays } : {}),
          ...(i.readStrategy ? { readStrategy: i.readStrategy } : {}),
          ...(i.readOptions && Object.keys(i.readOptions).length > 0 ? { readOptions: i.readOptions } : {}),
          ...(i.bulkFileHosts && i.bulkFileHosts.length > 0 ? { bulkFileHosts: i.bulkFileHosts } : {}),
          ...(i.clientId === null && i.authMethod !== 'none' ? { status: 'pending-client-id' } : {}),
          ...extraDetails,
        },
      },
    ]);
    return i.bulkFileHosts && i.bulkFileHosts.length > 0 ? getIntegration(client, i.id) : fromRow(settled.rows[0]!);
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

/** Ids of the active integrations (optionally of one auth method), in id order. */
export async function activeIntegrationIds(
  db: Queryable,
  where: { authMethod?: TokenAuthMethod; tenantId?: string } = {},
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM integrations
      WHERE ($1::text IS NULL OR auth_method = $1) AND ($2::text IS NULL OR tenant_id = $2) AND status = 'active'
      ORDER BY id`,
    [where.authMethod ?? null, where.tenantId ?? null],
  );
  return rows.map((r) => r.id);
}

/** Distinct vendor endpoints (vendor and base URL) of the integrations that may still sync. */
export async function activeEndpoints(db: Queryable): Promise<Array<{ vendor: string; baseUrl: string }>> {
  const res = await db.query<{ vendor: string; base_url: string }>(
    "SELECT DISTINCT vendor, base_url FROM integrations WHERE status = 'active'",
  );
  return res.rows.map((r) => ({ vendor: r.vendor, baseUrl: r.base_url }));
}
