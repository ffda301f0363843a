/** A write's answer: the stored version as the consumer reads it (minimised for its purpose), unless return=minimal. */
import type { ResourceType } from '../../domain.js';
import { minimiseForPurpose } from '../../fhir/minimise.js';
import type { Pool } from '../../store/pool.js';
import type { StoredRecordRow } from '../../store/record-reads.js';
import type { GatewayAccess, GatewayResponse } from '../access.js';
import { writeReadAudit } from './audit.js';
import { fhirHeaders } from './responses.js';
import type { FhirWriteRequest } from './write-handler.js';
import type { StoredWrite } from './write-store.js';

/** A decided write: its answer, and whether its success audit event is already written. */
export interface WriteOutcome {
  response: GatewayResponse;
  /** Its success audit event is written (in the transaction, or for a no-op beside it). */
  committed: boolean;
  integrationId: string;
  changeId?: string;
}

export function answer(
  access: GatewayAccess,
  request: FhirWriteRequest,
  type: ResourceType,
  stored: Pick<StoredWrite, 'versionId' | 'lastUpdated' | 'resource'>,
  status: number,
  extraHeaders: Record<string, string> = {},
): GatewayResponse {
  const id = String(stored.resource.id);
  const minimal = /(^|[;,\s])return=minimal\b/.test(request.headers.prefer ?? '');
  return {
    status,
    headers: fhirHeaders(access.correlationId, {
      etag: `W/"${stored.versionId}"`,
      'last-modified': stored.lastUpdated.toUTCString(),
      location: `${request.baseUrl.replace(/\/+$/, '')}/${type}/${id}/_history/${stored.versionId}`,
      ...extraHeaders,
    }),
    body: minimal ? undefined : minimiseForPurpose(type, stored.resource, access.purpose).resource,
  };
}

/**
 * A write that stores and queues nothing and answers the stored version (an update that changes nothing, a create
 * sent again with its Idempotency-Key): audited as served, with the reason.
 */
export async function answerStored(
  pool: Pool,
  access: GatewayAccess,
  request: FhirWriteRequest,
  served: {
    type: ResourceType;
    scope: string;
    interaction: 'create' | 'update' | 'patch';
    row: StoredRecordRow;
    resource: Record<string, unknown>;
    status: number;
    count: number;
    reason: string;
    headers?: Record<string, string>;
  },
): Promise<WriteOutcome> {
  const { type, row } = served;
  await writeReadAudit(pool, access, {
    action: 'gateway.write',
    status: served.status,
    resourceType: type,
    scope: served.scope,
    count: served.count,
    patients: row.patientPseudonym ? [row.patientPseudonym] : [],
    integrationIds: [row.integrationId],
    reason: served.reason,
    extra: { interaction: served.interaction, resourceId: row.resourceId, elements: [] },
  });
  const current = { versionId: row.versionId, lastUpdated: row.lastUpdated, resource: served.resource };
  return {
    response: answer(access, request, type, current, served.status, served.headers),
    committed: true,
    integrationId: row.integrationId,
  };
}
