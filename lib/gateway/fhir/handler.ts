/**
 * The gateway's FHIR R4 read API over the encrypted store (issue 12, items 1 and 3, read side). The HTTP layer
 * (workers/gateway.ts) verifies the consumer's token, builds the GatewayAccess and calls handleFhirRead with the
 * path after `/fhir/`.
 *
 *   GET metadata                      the CapabilityStatement (capability.ts); no PHI, not audited
 *   GET [type]/[id]                   read            (scope `r` on the type)
 *   GET [type]?…                      search-type     (scope `s`; parameters in search-params.ts)
 *   GET Patient/[id]/$everything      the patient's records of the types the consumer may see
 *
 * Refusals, decided before any lookup: an unknown type is 404; a type outside the consumer's purpose or scopes is
 * 403 (policy.ts says why not 404); an unsupported parameter is 400 naming it; an incident holding the tenant's
 * reads is 503 (freeze.ts). Every request but metadata is audited (audit.ts) — served, refused or failed — before
 * its answer is returned; when the audit event cannot be written the answer is a 500 without data.
 */
import { DecryptionError } from '../../errors/index.js';
import type { ResourceType } from '../../domain.js';
import { isResourceType } from '../../domain.js';
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Pool } from '../../store/pool.js';
import type { GatewayAccess, GatewayResponse } from '../access.js';
import type { GatewayAction, ReadAudit } from './audit.js';
import { writeReadAudit } from './audit.js';
import { capabilityStatement } from './capability.js';
import { FreezeGate, ReadsFrozen } from './freeze.js';
import type { Served } from './interactions.js';
import { everything, readById, searchType } from './interactions.js';
import type { Interaction } from './policy.js';
import { grantFor, purposeAllows } from './policy.js';
import { echoable, fhirHeaders, outcomeResponse } from './responses.js';
import { SearchParamError } from './search-params.js';

export interface FhirReadDeps {
  pool: Pool;
  keyring: TenantKeyring;
  /** The token endpoint the CapabilityStatement names; default: baseUrl's `/fhir` replaced by `/auth/token`. */
  tokenUrl?: string;
}

export interface FhirReadRequest {
  method: string;
  /** What follows `/fhir/`, without the query. */
  path: string;
  query: URLSearchParams;
  /** The absolute `/fhir` URL, for links. */
  baseUrl: string;
}

type Route =
  | { kind: 'metadata' }
  | { kind: 'read'; type: ResourceType; id: string }
  | { kind: 'search'; type: ResourceType }
  | { kind: 'everything'; id: string }
  | { kind: 'unknown-type'; name: string; action: GatewayAction }
  | { kind: 'unsupported'; type?: ResourceType };

function route(path: string): Route {
  // A client may percent-encode a segment (`%24everything`); one that does not decode matches nothing.
  const segments = path
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return '\u0000';
      }
    });
  const [first = '', second, third, ...rest] = segments;
  if (segments.length === 1 && first === 'metadata') return { kind: 'metadata' };
  if (first === '') return { kind: 'unsupported' };
  if (!isResourceType(first)) {
    const action = second === undefined ? 'gateway.search' : third === undefined ? 'gateway.read' : 'gateway.request';
    return { kind: 'unknown-type', name: first, action };
  }
  if (second === undefined) return { kind: 'search', type: first };
  if (third === undefined && second !== '' && !second.startsWith('_') && !second.startsWith('$'))
    return { kind: 'read', type: first, id: second };
  if (first === 'Patient' && third === '$everything' && rest.length === 0) return { kind: 'everything', id: second };
  return { kind: 'unsupported', type: first };
}

const ACTIONS = { read: 'gateway.read', search: 'gateway.search', everything: 'gateway.everything' } as const;

export async function handleFhirRead(
  deps: FhirReadDeps,
  access: GatewayAccess,
  request: FhirReadRequest,
): Promise<GatewayResponse> {
  const baseUrl = request.baseUrl.replace(/\/+$/, '');
  const r = route(request.path);
  const method = request.method.toUpperCase();
  if (r.kind === 'metadata') {
    if (method !== 'GET')
      return outcomeResponse(access.correlationId, 405, 'not-supported', 'metadata is read with GET', {
        allow: 'GET',
      });
    return {
      status: 200,
      headers: fhirHeaders(access.correlationId),
      body: capabilityStatement({ baseUrl, ...(deps.tokenUrl ? { tokenUrl: deps.tokenUrl } : {}) }),
    };
  }
  let served: Served;
  try {
    served = await serve(deps, access, { ...request, method, baseUrl }, r);
  } catch (err) {
    served = failure(access, r, err);
  }
  try {
    await writeReadAudit(deps.pool, access, served.audit);
  } catch {
    // Fail closed: nothing leaves whose access is not in the audit trail.
    return outcomeResponse(access.correlationId, 500, 'exception', 'the access could not be audited; nothing served');
  }
  return served.response;
}

function refused(
  access: GatewayAccess,
  status: number,
  code: 'not-found' | 'not-supported' | 'invalid' | 'forbidden' | 'transient',
  diagnostics: string,
  audit: Omit<ReadAudit, 'status' | 'count' | 'patients'>,
  headers: Record<string, string> = {},
): Served {
  return {
    response: outcomeResponse(access.correlationId, status, code, diagnostics, headers),
    audit: { ...audit, status, count: 0, patients: [] },
  };
}

async function serve(deps: FhirReadDeps, access: GatewayAccess, request: FhirReadRequest, r: Route): Promise<Served> {
  if (r.kind === 'metadata') throw new Error('metadata is answered before serve');
  if (r.kind === 'unknown-type') {
    const diagnostics = `resource type ${echoable(r.name)} is not served here`;
    return refused(access, 404, 'not-supported', diagnostics, { action: r.action, reason: 'unknown-type' });
  }
  if (r.kind === 'unsupported') {
    const diagnostics = 'this interaction is not supported (see metadata: read, search-type, Patient $everything)';
    return refused(access, 404, 'not-supported', diagnostics, {
      action: 'gateway.request',
      ...(r.type ? { resourceType: r.type } : {}),
      reason: 'unsupported-interaction',
    });
  }
  const action = ACTIONS[r.kind];
  const type: ResourceType = r.kind === 'everything' ? 'Patient' : r.type;
  if (request.method !== 'GET') {
    return refused(
      access,
      405,
      'not-supported',
      'the gateway is read-only: GET',
      { action, resourceType: type, reason: 'method' },
      { allow: 'GET' },
    );
  }
  if (!purposeAllows(access, type)) {
    const diagnostics = `purpose ${access.purpose} does not allow ${type}`;
    return refused(access, 403, 'forbidden', diagnostics, { action, resourceType: type, reason: 'purpose' });
  }
  const interaction: Interaction = r.kind === 'search' ? 'search' : 'read';
  const grant = grantFor(access, type, interaction);
  if (!grant) {
    const diagnostics = `no scope grants ${interaction} on ${type}`;
    return refused(access, 403, 'forbidden', diagnostics, { action, resourceType: type, reason: 'scope' });
  }
  const gate = new FreezeGate(deps.pool, access.tenantId);
  switch (r.kind) {
    case 'read':
      return readById(deps, access, gate, r.type, r.id);
    case 'search':
      return searchType(deps, access, gate, r.type, request.query, request.baseUrl);
    case 'everything':
      return everything(deps, access, gate, r.id, request.query, request.baseUrl);
  }
}

function failure(access: GatewayAccess, r: Route, err: unknown): Served {
  const action: GatewayAction =
    r.kind === 'read' || r.kind === 'search' || r.kind === 'everything' ? ACTIONS[r.kind] : 'gateway.request';
  const resourceType =
    r.kind === 'read' || r.kind === 'search' ? r.type : r.kind === 'everything' ? 'Patient' : undefined;
  const at = { action, ...(resourceType ? { resourceType } : {}) };
  if (err instanceof ReadsFrozen) {
    const audit = { ...at, reason: 'incident-hold', extra: { incidentId: err.freeze.incidentId } };
    const diagnostics = 'reads are frozen by an incident (SCOPE_UNDER_INCIDENT)';
    return refused(access, 503, 'transient', diagnostics, audit, { 'retry-after': '3600' });
  }
  if (err instanceof SearchParamError) {
    const audit = { ...at, reason: 'search-parameter', extra: { parameter: err.parameter.slice(0, 64) } };
    return refused(access, 400, 'invalid', err.message, audit);
  }
  const reason = err instanceof DecryptionError ? 'decryption-failed' : 'error';
  return {
    response: outcomeResponse(access.correlationId, 500, 'exception', 'the request could not be served'),
    audit: { ...at, status: 500, count: 0, patients: [], reason },
  };
}
