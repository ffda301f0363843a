/**
 * The three reads the gateway serves — read by id, search-type, Patient/[id]/$everything — over the encrypted
 * store: winners across the tenant's integrations (lib/store/record-reads.ts states the rule), decrypted with the
 * tenant keyring, then minimised again for the consumer's purpose (a consumer whose purpose is narrower than the
 * integration's gets less). Each returns its answer and the facts its audit event records; handler.ts writes the
 * event before the answer leaves.
 */
import { decryptRecord } from '../../crypto/envelope.js';
import type { ResourceType } from '../../domain.js';
import { RESOURCE_TYPES } from '../../domain.js';
import { minimiseForPurpose } from '../../fhir/minimise.js';
import { tenantHasDataKey } from '../../keys/data-key-repository.js';
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Pool } from '../../store/pool.js';
import type { StoredRecordRow } from '../../store/record-reads.js';
import {
  heldByAnotherTenant,
  readWinningRecord,
  searchPatientCompartment,
  searchWinningRecords,
} from '../../store/record-reads.js';
import type { GatewayAccess } from '../access.js';
import type { ReadAudit } from './audit.js';
import type { FreezeGate } from './freeze.js';
import { grantFor, purposeAllows } from './policy.js';
import type { BundleEntryInput } from './responses.js';
import { fhirHeaders, outcomeResponse, searchsetBundle } from './responses.js';
import { encodeCursor, hasPatientParam, parseSearch, searchParamsOf } from './search-params.js';
import type { GatewayResponse } from '../access.js';

export interface ReadDeps {
  pool: Pool;
  keyring: TenantKeyring;
}

export interface Served {
  response: GatewayResponse;
  audit: ReadAudit;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** A stored record as the consumer receives it: decrypted, then minimised for the consumer's purpose. */
async function served(deps: ReadDeps, access: GatewayAccess, row: StoredRecordRow): Promise<Record<string, unknown>> {
  const audit = { actor: `consumer:${access.consumerId}`, correlationId: access.correlationId };
  const plain = await decryptRecord(
    row.ciphertext,
    {
      tenantId: access.tenantId,
      integrationId: row.integrationId,
      resourceType: row.resourceType,
      resourceId: row.resourceId,
    },
    (tenantId, version) => deps.keyring.dataKey(tenantId, version, audit),
  );
  try {
    const resource = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    return minimiseForPurpose(row.resourceType as ResourceType, resource, access.purpose).resource;
  } finally {
    plain.fill(0);
  }
}

function pseudonymsOf(rows: readonly StoredRecordRow[]): string[] {
  return rows.flatMap((r) => (r.patientPseudonym ? [r.patientPseudonym] : []));
}

export async function readById(
  deps: ReadDeps,
  access: GatewayAccess,
  gate: FreezeGate,
  type: ResourceType,
  id: string,
): Promise<Served> {
  const grant = grantFor(access, type, 'read')!;
  const base = { action: 'gateway.read' as const, resourceType: type, scope: grant.scope };
  const bg = grant.breakGlassId ? { breakGlassIds: [grant.breakGlassId] } : {};
  const row = FHIR_ID.test(id) ? await readWinningRecord(deps.pool, access.tenantId, type, id) : undefined;
  await gate.check();
  if (!row) {
    // Another tenant's resource is answered exactly as a missing one; only the audit event tells them apart.
    const foreign = FHIR_ID.test(id) && (await heldByAnotherTenant(deps.pool, access.tenantId, type, id));
    return {
      response: outcomeResponse(access.correlationId, 404, 'not-found', `${type}/${id} is not known`),
      audit: { ...base, ...bg, status: 404, count: 0, patients: [], reason: foreign ? 'other-tenant' : 'not-found' },
    };
  }
  const resource = await served(deps, access, row);
  return {
    response: {
      status: 200,
      headers: fhirHeaders(access.correlationId, {
        etag: `W/"${row.versionId}"`,
        'last-modified': row.lastUpdated.toUTCString(),
      }),
      body: resource,
    },
    audit: {
      ...base,
      ...bg,
      status: 200,
      count: 1,
      patients: pseudonymsOf([row]),
      integrationIds: [row.integrationId],
    },
  };
}

function link(baseUrl: string, target: string, query: URLSearchParams): string {
  return `${baseUrl}/${target}?${query.toString()}`;
}

async function page(
  deps: ReadDeps,
  access: GatewayAccess,
  rows: StoredRecordRow[],
  count: number,
): Promise<{ entries: BundleEntryInput[]; served: StoredRecordRow[]; more: boolean }> {
  const servedRows = rows.slice(0, count);
  const entries: BundleEntryInput[] = [];
  for (const row of servedRows)
    entries.push({
      resourceType: row.resourceType,
      resourceId: row.resourceId,
      resource: await served(deps, access, row),
    });
  return { entries, served: servedRows, more: rows.length > count };
}

export async function searchType(
  deps: ReadDeps,
  access: GatewayAccess,
  gate: FreezeGate,
  type: ResourceType,
  query: URLSearchParams,
  baseUrl: string,
): Promise<Served> {
  const grant = grantFor(access, type, 'search')!;
  const search = parseSearch(type, query, searchParamsOf(type), 1);
  let pseudonyms: string[] | undefined;
  if (search.patientIds && hasPatientParam(type)) {
    // A tenant with no data key has stored nothing (and a read must not create its keys).
    if (await tenantHasDataKey(deps.pool, access.tenantId)) {
      const pseudonymise = await deps.keyring.pseudonymiser(access.tenantId, {
        actor: `consumer:${access.consumerId}`,
        correlationId: access.correlationId,
      });
      pseudonyms = search.patientIds.map(pseudonymise);
    } else pseudonyms = [];
  }
  const rows = await searchWinningRecords(deps.pool, {
    tenantId: access.tenantId,
    resourceType: type,
    ...(search.ids ? { ids: search.ids } : {}),
    ...(pseudonyms ? { patientPseudonyms: pseudonyms } : {}),
    lastUpdated: search.lastUpdated,
    ...(search.cursor ? { afterId: search.cursor.after[0] } : {}),
    limit: search.count + 1,
  });
  await gate.check();
  const { entries, served: servedRows, more } = await page(deps, access, rows, search.count);
  const self = new URLSearchParams(search.linkQuery);
  if (query.has('_cursor')) self.set('_cursor', query.get('_cursor')!);
  const next = new URLSearchParams(search.linkQuery);
  if (more) next.set('_cursor', encodeCursor(type, query, [servedRows[servedRows.length - 1]!.resourceId]));
  return {
    response: {
      status: 200,
      headers: fhirHeaders(access.correlationId),
      body: searchsetBundle(
        baseUrl,
        { self: link(baseUrl, type, self), ...(more ? { next: link(baseUrl, type, next) } : {}) },
        entries,
      ),
    },
    audit: {
      action: 'gateway.search',
      status: 200,
      resourceType: type,
      scope: grant.scope,
      ...(grant.breakGlassId ? { breakGlassIds: [grant.breakGlassId] } : {}),
      count: entries.length,
      patients: pseudonymsOf(servedRows),
      integrationIds: servedRows.map((r) => r.integrationId),
    },
  };
}

/**
 * Patient/[id]/$everything: the patient (read scope on Patient) and every record of theirs of the types the
 * consumer may search and its purpose allows; other types are left out (the audit event lists those searched).
 */
export async function everything(
  deps: ReadDeps,
  access: GatewayAccess,
  gate: FreezeGate,
  patientId: string,
  query: URLSearchParams,
  baseUrl: string,
): Promise<Served> {
  const target = `Patient/${patientId}/$everything`;
  const patientGrant = grantFor(access, 'Patient', 'read')!;
  const search = parseSearch(target, query, [], 2);
  const patient = FHIR_ID.test(patientId)
    ? await readWinningRecord(deps.pool, access.tenantId, 'Patient', patientId)
    : undefined;
  await gate.check();
  const grants = RESOURCE_TYPES.flatMap((t) => {
    const g = purposeAllows(access, t) ? grantFor(access, t, t === 'Patient' ? 'read' : 'search') : undefined;
    return g ? [{ type: t, grant: g }] : [];
  });
  const base = {
    action: 'gateway.everything' as const,
    resourceType: 'Patient',
    scope: patientGrant.scope,
    scopes: [...new Set(grants.map((g) => g.grant.scope))],
    types: grants.map((g) => g.type),
  };
  if (!patient?.patientPseudonym) {
    return {
      response: outcomeResponse(access.correlationId, 404, 'not-found', `Patient/${patientId} is not known`),
      audit: { ...base, status: 404, count: 0, patients: [], reason: 'not-found' },
    };
  }
  const after = search.cursor ? { resourceType: search.cursor.after[0]!, resourceId: search.cursor.after[1]! } : {};
  const rows = await searchPatientCompartment(deps.pool, {
    tenantId: access.tenantId,
    patientPseudonym: patient.patientPseudonym,
    resourceTypes: grants.map((g) => g.type),
    ...(search.cursor ? { after: after as { resourceType: string; resourceId: string } } : {}),
    limit: search.count + 1,
  });
  const { entries, served: servedRows, more } = await page(deps, access, rows, search.count);
  const usedTypes = new Set(servedRows.map((r) => r.resourceType));
  const breakGlassIds = grants.flatMap((g) =>
    g.grant.breakGlassId && (usedTypes.has(g.type) || g.type === 'Patient') ? [g.grant.breakGlassId] : [],
  );
  const last = servedRows[servedRows.length - 1];
  const self = new URLSearchParams(search.linkQuery);
  if (query.has('_cursor')) self.set('_cursor', query.get('_cursor')!);
  const next = new URLSearchParams(search.linkQuery);
  if (more && last) next.set('_cursor', encodeCursor(target, query, [last.resourceType, last.resourceId]));
  return {
    response: {
      status: 200,
      headers: fhirHeaders(access.correlationId),
      body: searchsetBundle(
        baseUrl,
        { self: link(baseUrl, target, self), ...(more ? { next: link(baseUrl, target, next) } : {}) },
        entries,
      ),
    },
    audit: {
      ...base,
      ...(breakGlassIds.length > 0 ? { breakGlassIds } : {}),
      status: 200,
      count: entries.length,
      patients: [patient.patientPseudonym],
      integrationIds: servedRows.map((r) => r.integrationId),
    },
  };
}
