/**
 * What the gateway write tests share: a tenant with sandbox integrations and synthetic records stored as a sync
 * stores them, consumers' accesses with write scopes, calls of handleFhirWrite with a recording notifier, and the
 * outbox and audit rows a request left.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceType } from '../../lib/domain.js';
import type { Purpose } from '../../lib/fhir/classification.js';
import type { GatewayAccess, GatewayResponse } from '../../lib/gateway/access.js';
import { handleFhirRead } from '../../lib/gateway/fhir/handler.js';
import type { FhirWriteRequest } from '../../lib/gateway/fhir/write-handler.js';
import { handleFhirWrite } from '../../lib/gateway/fhir/write-handler.js';
import { parseScopes } from '../../lib/gateway/scopes.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import type { Pool } from '../../lib/store/pool.js';
import { storeResources } from '../../lib/sync/store-resources.js';
import type { OutboxNotifier } from '../../lib/writeback/notifier.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import { openKeyring } from './gateway-support.js';
import type { SyncHarness } from './support.js';
import { registerSandboxTenant, testActor } from './support.js';

export const BASE_URL = 'https://gateway.test/fhir';
export const VENDOR_UPDATED = '2026-01-02T03:04:05.000Z';

export function access(tenantId: string, purpose: Purpose, scopes: string, consumerId = 'c-writer'): GatewayAccess {
  const parsed = parseScopes(scopes, 'scope', { writes: true });
  return { tenantId, consumerId, purpose, scopes: parsed, breakGlass: [], correlationId: randomUUID() };
}

/** A notifier that records what it was told. */
export function recordingNotifier(): OutboxNotifier & { calls: Array<{ tenantId: string; integrationId: string }> } {
  const calls: Array<{ tenantId: string; integrationId: string }> = [];
  return {
    calls,
    changesQueued: async (scope) => {
      calls.push(scope);
    },
  };
}

export interface WriteCall {
  (
    who: GatewayAccess,
    method: string,
    path: string,
    body?: unknown,
    headers?: FhirWriteRequest['headers'],
  ): Promise<GatewayResponse & { correlationId: string }>;
}

export function writer(deps: () => { pool: Pool; keyring: TenantKeyring; notifier?: OutboxNotifier }): WriteCall {
  return async (who, method, path, body, headers) => {
    const correlationId = randomUUID();
    const contentType = method === 'PATCH' ? 'application/json-patch+json' : 'application/fhir+json';
    const res = await handleFhirWrite(
      deps(),
      { ...who, correlationId },
      {
        method,
        path,
        baseUrl: BASE_URL,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        headers: { contentType, ...headers },
      },
    );
    return { ...res, correlationId };
  };
}

/**
 * Gateway writes whose notifier wakes the real writeBack workflow on the harness's Temporal (the changes reach the
 * sandbox); `open()` opens the keyring once the harness is up.
 */
export function temporalWriter(harness: SyncHarness) {
  let keyring: TenantKeyring | undefined;
  const deps = () => ({
    pool: harness.pool,
    keyring: keyring!,
    notifier: temporalOutboxNotifier(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE),
  });
  return {
    deps,
    write: writer(deps),
    async open(): Promise<void> {
      keyring ??= await openKeyring(harness.pool, harness.config);
    },
  };
}

export async function readBack(
  deps: { pool: Pool; keyring: TenantKeyring },
  who: GatewayAccess,
  path: string,
): Promise<GatewayResponse> {
  return handleFhirRead(
    deps,
    { ...who, correlationId: randomUUID() },
    { method: 'GET', path, query: new URLSearchParams(), baseUrl: BASE_URL },
  );
}

export function appointment(id: string, patient: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Appointment',
    id,
    status: 'booked',
    description: 'Synthetic follow-up',
    start: '2027-01-05T09:00:00Z',
    end: '2027-01-05T09:30:00Z',
    participant: [{ actor: { reference: `Patient/${patient}` }, status: 'accepted' }],
    ...extra,
  };
}

export function patient(id: string): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id,
    name: [{ family: 'Synthetica', given: ['Testa'] }],
    telecom: [{ system: 'phone', value: '555-0100' }],
    maritalStatus: { text: 'Synthetic' },
    gender: 'female',
  };
}

/** Stores resources as a sync of the integration does (version `1`, lastUpdated VENDOR_UPDATED). */
export async function storeAsSynced(
  deps: { pool: Pool; keyring: TenantKeyring },
  at: { tenantId: string; integrationId: string },
  type: ResourceType,
  resources: Array<Record<string, unknown>>,
): Promise<void> {
  const integration = await getIntegration(deps.pool, at.integrationId);
  await storeResources(
    deps,
    testActor,
    { ...at, resourceType: type, purpose: integration.purpose },
    resources.map((r) => ({
      id: String(r.id),
      versionId: '1',
      lastUpdated: VENDOR_UPDATED,
      resource: { ...r, meta: { versionId: '1', lastUpdated: VENDOR_UPDATED } },
    })),
  );
}

export async function newTenant(harness: SyncHarness, integrations = 1) {
  return registerSandboxTenant(harness.pool, harness.sandbox, { integrations });
}

export interface OutboxRow {
  id: string;
  kind: string;
  status: string;
  resource_id: string;
  integration_id: string;
  base_version_id: string | null;
  changed_elements: string[];
  ciphertext: Buffer;
}

export async function outboxOf(pool: Pool, tenantId: string, resourceId?: string): Promise<OutboxRow[]> {
  const { rows } = await pool.query<OutboxRow>(
    `SELECT id, kind, status, resource_id, integration_id, base_version_id, changed_elements, ciphertext
       FROM outbox_changes WHERE tenant_id = $1 AND ($2::text IS NULL OR resource_id = $2) ORDER BY created_at, id`,
    [tenantId, resourceId ?? null],
  );
  return rows;
}

export async function versionOf(pool: Pool, tenantId: string, type: string, id: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ version_id: string }>(
    'SELECT version_id FROM records WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3',
    [tenantId, type, id],
  );
  return rows[0]?.version_id;
}

export async function auditRows(
  pool: Pool,
  correlationId: string,
): Promise<Array<{ action: string; outcome: string; details: Record<string, unknown> }>> {
  const { rows } = await pool.query<{ action: string; outcome: string; details: Record<string, unknown> }>(
    'SELECT action, outcome, details FROM audit_events WHERE correlation_id = $1 ORDER BY seq',
    [correlationId],
  );
  return rows;
}
