/**
 * The gateway's FHIR writes (issue 13 item 1): local changes from the organisation's systems, stored as the local
 * version of the record with a pending change in the write-back outbox (write-interactions.ts decides, write-store.ts
 * stores). The HTTP layer (workers/gateway.ts) hands non-GET requests under /fhir/ here, the body as text.
 *
 *   POST  [type]         create   (scope `c`; the target integration: the tenant's only one, else X-Ehr-Integration)
 *   PUT   [type]/[id]    update   (scope `u`; the integration holding the record)
 *   PATCH [type]/[id]    patch    (scope `u`; application/json-patch+json, RFC 6902)
 *   DELETE               405: the gateway does not delete
 *
 * Refusals, decided before anything is stored and audited like read refusals (`gateway.write`, failure): an unknown
 * type 404; purpose or scope 403; a malformed or invalid body 400 (OperationOutcome naming the element); a stale
 * If-Match 412; an element the write policy leaves to the EHR 422; an incident freezing the tenant 503; a malformed
 * Idempotency-Key 400, one used before for another request 422 (write-replay.ts). When the refusal's audit event
 * cannot be written the answer is a 500.
 */
import { isResourceType } from '../../domain.js';
import type { ResourceType } from '../../domain.js';
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Logger } from '../../log/logger.js';
import type { Pool } from '../../store/pool.js';
import type { OutboxNotifier } from '../../writeback/notifier.js';
import type { GatewayAccess, GatewayResponse } from '../access.js';
import { writeReadAudit } from './audit.js';
import { ReadsFrozen } from './freeze.js';
import { grantFor, purposeAllows } from './policy.js';
import { echoable, outcomeResponse } from './responses.js';
import type { WriteInteraction } from './write-store.js';
import { WriteRaced } from './write-store.js';
import { WriteRefused } from './write-body.js';
import { createResource, updateResource } from './write-interactions.js';

export interface FhirWriteDeps {
  pool: Pool;
  keyring: TenantKeyring;
  /** Wakes the integration's writeBack workflow after the commit; a failure is logged, the change waits. */
  notifier?: OutboxNotifier;
  logger?: Logger;
}

export interface FhirWriteRequest {
  method: string;
  /** What follows `/fhir/`, without the query. */
  path: string;
  /** The absolute `/fhir` URL, for Location. */
  baseUrl: string;
  /** The raw body (undefined: none). */
  body: string | undefined;
  headers: { contentType?: string; ifMatch?: string; prefer?: string; integration?: string; idempotencyKey?: string };
}

type Route =
  | { kind: 'write'; interaction: WriteInteraction; type: ResourceType; id?: string }
  | { kind: 'delete'; type?: ResourceType; allow: string }
  | { kind: 'method'; type?: ResourceType; allow: string }
  | { kind: 'unknown-type'; name: string }
  | { kind: 'unsupported'; type?: ResourceType };

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

function route(method: string, path: string): Route {
  const segments = path.replace(/^\/+|\/+$/g, '').split('/');
  const [first = '', second, ...rest] = segments;
  if (first === 'metadata' && second === undefined) return { kind: 'method', allow: 'GET' };
  if (first === '') return { kind: 'unsupported' };
  if (!isResourceType(first)) return { kind: 'unknown-type', name: first };
  if (rest.length > 0 || second === '') return { kind: 'unsupported', type: first };
  const allow = second === undefined ? 'GET, POST' : 'GET, PUT, PATCH';
  if (method === 'DELETE') return { kind: 'delete', type: first, allow };
  if (second === undefined && method === 'POST') return { kind: 'write', interaction: 'create', type: first };
  if (second !== undefined && FHIR_ID.test(second) && (method === 'PUT' || method === 'PATCH'))
    return { kind: 'write', interaction: method === 'PUT' ? 'update' : 'patch', type: first, id: second };
  if (second !== undefined && !FHIR_ID.test(second)) return { kind: 'unsupported', type: first };
  return { kind: 'method', type: first, allow };
}

export async function handleFhirWrite(
  deps: FhirWriteDeps,
  access: GatewayAccess,
  request: FhirWriteRequest,
): Promise<GatewayResponse> {
  const method = request.method.toUpperCase();
  const r = route(method, request.path);
  const at = {
    action: 'gateway.write' as const,
    ...(r.kind !== 'unknown-type' && r.type ? { resourceType: r.type } : {}),
    ...(r.kind === 'write' ? { extra: { interaction: r.interaction } } : {}),
  };
  let response: GatewayResponse;
  let reason: string | undefined;
  let extra: Record<string, unknown> = {};
  let committed = false;
  try {
    const out = await serve(deps, access, request, r);
    response = out.response;
    committed = out.committed;
  } catch (err) {
    ({ response, reason, extra } = refusal(deps, access, err));
  }
  if (committed) return response;
  try {
    await writeReadAudit(deps.pool, access, {
      ...at,
      status: response.status,
      count: 0,
      patients: [],
      reason: reason ?? 'refused',
      extra: { ...at.extra, ...extra },
    });
  } catch {
    return outcomeResponse(access.correlationId, 500, 'exception', 'the request could not be audited; nothing stored');
  }
  return response;
}

async function serve(
  deps: FhirWriteDeps,
  access: GatewayAccess,
  request: FhirWriteRequest,
  r: Route,
): Promise<{ response: GatewayResponse; committed: boolean }> {
  const id = access.correlationId;
  switch (r.kind) {
    case 'unknown-type':
      throw new WriteRefused(
        404,
        'not-supported',
        `resource type ${echoable(r.name)} is not served here`,
        'unknown-type',
      );
    case 'unsupported':
      throw new WriteRefused(404, 'not-supported', 'this interaction is not supported (see metadata)', 'unsupported');
    case 'delete':
      throw new WriteRefused(405, 'not-supported', 'the gateway does not delete (DELETE is not supported)', 'method', {
        allow: r.allow,
      });
    case 'method':
      throw new WriteRefused(405, 'not-supported', `use ${r.allow}`, 'method', { allow: r.allow });
    case 'write':
      break;
  }
  if (!purposeAllows(access, r.type))
    throw new WriteRefused(403, 'forbidden', `purpose ${access.purpose} does not allow ${r.type}`, 'purpose');
  const permission = r.interaction === 'create' ? 'create' : 'update';
  const grant = grantFor(access, r.type, permission);
  if (!grant) throw new WriteRefused(403, 'forbidden', `no scope grants ${permission} on ${r.type}`, 'scope');
  const outcome =
    r.interaction === 'create'
      ? await createResource(deps, access, request, r.type, grant.scope)
      : await updateResource(deps, access, request, r.type, r.id!, r.interaction, grant.scope);
  if (outcome.changeId && deps.notifier) {
    // After the commit: the change is safe in the outbox whatever happens here.
    await deps.notifier
      .changesQueued({ tenantId: access.tenantId, integrationId: outcome.integrationId })
      .catch((err: unknown) =>
        deps.logger?.warn(
          { err: { name: (err as Error)?.name }, changeId: outcome.changeId, correlationId: id },
          'write-back not notified; the change waits in the outbox',
        ),
      );
  }
  return { response: outcome.response, committed: outcome.committed };
}

function refusal(
  deps: FhirWriteDeps,
  access: GatewayAccess,
  err: unknown,
): { response: GatewayResponse; reason: string; extra: Record<string, unknown> } {
  const id = access.correlationId;
  if (err instanceof WriteRefused)
    return {
      response: {
        status: err.status,
        headers: outcomeResponse(id, err.status, err.code, '', err.headers).headers,
        body: err.outcome,
      },
      reason: err.reason,
      extra: err.auditExtra,
    };
  if (err instanceof ReadsFrozen)
    return {
      response: outcomeResponse(id, 503, 'transient', 'writes are frozen by an incident (SCOPE_UNDER_INCIDENT)', {
        'retry-after': '3600',
      }),
      reason: 'incident-hold',
      extra: { incidentId: err.freeze.incidentId },
    };
  if (err instanceof WriteRaced)
    return {
      response: outcomeResponse(id, 409, 'conflict', 'the record changed meanwhile; read it and try again'),
      reason: 'raced',
      extra: {},
    };
  deps.logger?.error({ err: { name: (err as Error)?.name }, correlationId: id }, 'gateway write failed');
  return {
    response: outcomeResponse(id, 500, 'exception', 'the write could not be made; nothing stored'),
    reason: 'error',
    extra: {},
  };
}
