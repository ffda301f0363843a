/** A write's answer: the stored version as the consumer reads it (minimised for its purpose), unless return=minimal. */
import type { ResourceType } from '../../domain.js';
import { minimiseForPurpose } from '../../fhir/minimise.js';
import type { GatewayAccess, GatewayResponse } from '../access.js';
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
