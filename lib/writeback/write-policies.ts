/**
 * Reading and changing an integration's write policies (`ehrctl writes policy show | set`): the built-in defaults
 * of lib/writeback/authority.ts, or the integration's stored override per type. A change starts from the policy in
 * force, sets the given element authorities and create/update switches, is stored in `write_policies` and audited
 * (`writeback.policy_set`: element names, authorities and the reason — never data) in one transaction. Elements are
 * the type's storable R4 top-level elements (lib/fhir/classification.ts); the vendor-assigned ones (id, meta,
 * text) belong to no side.
 */
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { RESOURCE_TYPES, isResourceType } from '../domain.js';
import type { ResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import { CLASSIFICATION } from '../fhir/classification.js';
import { getIntegration } from '../integrations/repository.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { Authority, TypeWritePolicy } from './authority.js';
import { AUTHORITIES, DEFAULT_WRITE_POLICIES, VENDOR_ASSIGNED_ELEMENTS, defaultWritePolicy } from './authority.js';

export interface WritePolicyView {
  integrationId: string;
  resourceType: ResourceType;
  policy: TypeWritePolicy;
  source: 'default' | 'integration';
  updatedBy: string | null;
  updatedAt: string | null;
}

export interface WritePolicyChange {
  integrationId: string;
  resourceType: string;
  /** element → authority; `remote` takes an element back to the EHR (unlisted). */
  elements: Readonly<Record<string, string>>;
  create?: boolean;
  update?: boolean;
  reason: string;
}

const REASON = /^[\x20-\x7e]{1,200}$/;

interface Row {
  resource_type: string;
  policy: TypeWritePolicy;
  updated_by: string;
  updated_at: Date;
}

async function storedPolicies(db: Queryable, tenantId: string, integrationId: string): Promise<Map<string, Row>> {
  const res = await db.query<Row>(
    `SELECT resource_type, policy, updated_by, updated_at FROM write_policies
      WHERE tenant_id = $1 AND integration_id = $2`,
    [tenantId, integrationId],
  );
  return new Map(res.rows.map((r) => [r.resource_type, r]));
}

function view(integrationId: string, type: ResourceType, row: Row | undefined): WritePolicyView {
  return {
    integrationId,
    resourceType: type,
    policy: row?.policy ?? defaultWritePolicy(type),
    source: row ? 'integration' : 'default',
    updatedBy: row?.updated_by ?? null,
    updatedAt: row?.updated_at.toISOString() ?? null,
  };
}

function checkType(type: string): ResourceType {
  if (!isResourceType(type)) throw new InvalidArgumentError('--type', `one of ${RESOURCE_TYPES.join(', ')}`);
  return type;
}

/** The policies in force: of one type, else of every type with a default or an override. */
export async function showWritePolicies(
  db: Queryable,
  integrationId: string,
  type?: string,
): Promise<WritePolicyView[]> {
  const integration = await getIntegration(db, integrationId);
  const stored = await storedPolicies(db, integration.tenantId, integration.id);
  const types =
    type !== undefined
      ? [checkType(type)]
      : RESOURCE_TYPES.filter((t) => stored.has(t) || DEFAULT_WRITE_POLICIES[t] !== undefined);
  return types.map((t) => view(integration.id, t, stored.get(t)));
}

function applyChange(type: ResourceType, from: TypeWritePolicy, change: WritePolicyChange): TypeWritePolicy {
  const elements: Record<string, Authority> = { ...from.elements };
  for (const [element, authority] of Object.entries(change.elements)) {
    if (VENDOR_ASSIGNED_ELEMENTS.includes(element))
      throw new InvalidArgumentError('--element', `${element} is assigned by the vendor and owned by no side`);
    if (!Object.hasOwn(CLASSIFICATION[type], element))
      throw new InvalidArgumentError('--element', `${element} is not a stored element of ${type}`);
    if (!(AUTHORITIES as readonly string[]).includes(authority))
      throw new InvalidArgumentError('--element', `${element}=${authority}: one of ${AUTHORITIES.join(', ')}`);
    if (authority === 'remote') delete elements[element];
    else elements[element] = authority as Authority;
  }
  const sorted = Object.fromEntries(Object.entries(elements).sort(([a], [b]) => a.localeCompare(b)));
  return { create: change.create ?? from.create, update: change.update ?? from.update, elements: sorted };
}

/** Sets (part of) a type's policy for an integration, audited with the reason; returns the policy now in force. */
export async function setWritePolicy(
  pool: Pool,
  change: WritePolicyChange,
  ctx: AuditContext,
): Promise<WritePolicyView> {
  if (!REASON.test(change.reason))
    throw new InvalidArgumentError('--reason', '1-200 printable ASCII characters (no PHI)');
  const type = checkType(change.resourceType);
  const integration = await getIntegration(pool, change.integrationId);
  return withTransaction(pool, async (client) => {
    const stored = await storedPolicies(client, integration.tenantId, integration.id);
    const before = view(integration.id, type, stored.get(type)).policy;
    const after = applyChange(type, before, change);
    const res = await client.query<Row>(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, integration_id, resource_type)
         DO UPDATE SET policy = EXCLUDED.policy, updated_by = EXCLUDED.updated_by, updated_at = now()
       RETURNING resource_type, policy, updated_by, updated_at`,
      [integration.tenantId, integration.id, type, JSON.stringify(after), ctx.actor],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'writeback.policy_set',
        outcome: 'success',
        tenantId: integration.tenantId,
        integrationId: integration.id,
        details: { resourceType: type, before, after, reason: change.reason },
      },
    ]);
    return view(integration.id, type, res.rows[0]);
  });
}
