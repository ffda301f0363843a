/**
 * A create sent again with the same Idempotency-Key (migrations/1733610000000_gateway-idempotency-keys.sql):
 * nothing new is stored or queued; the answer is what the first request created, as the consumer reads it now —
 * under the EHR's id once its change was sent — with `Idempotent-Replayed: true`. The same key with a different
 * request (another body, type or target integration) is refused 422. Keys are the consumer's own: two consumers
 * never see each other's.
 */
import canonicalize from 'canonicalize';
import { decryptRecord } from '../../crypto/envelope.js';
import { IDEMPOTENCY_KEY_PATTERN } from '../../domain.js';
import type { ResourceType } from '../../domain.js';
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Pool } from '../../store/pool.js';
import { readWinningRecord } from '../../store/record-reads.js';
import type { GatewayAccess } from '../access.js';
import type { ClaimedKey } from './idempotency-repository.js';
import { IDEMPOTENCY_KEY_HOURS, vendorIdOfCreate } from './idempotency-repository.js';
import { answerStored } from './write-answer.js';
import type { WriteOutcome } from './write-answer.js';
import { WriteRefused } from './write-body.js';
import type { FhirWriteRequest } from './write-handler.js';

interface Deps {
  pool: Pool;
  keyring: TenantKeyring;
}

/**
 * The create's claim: its Idempotency-Key (400 when malformed) and a digest of what it asks for under the tenant's
 * pseudonym key (an HMAC: no content is kept). Undefined when the request sent no key.
 */
export async function claimFor(
  deps: Deps,
  access: GatewayAccess,
  request: FhirWriteRequest,
  create: { type: ResourceType; integrationId: string; content: Record<string, unknown> },
): Promise<{ key: string; requestDigest: string } | undefined> {
  const key = request.headers.idempotencyKey;
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key))
    throw new WriteRefused(
      400,
      'invalid',
      'Idempotency-Key must be 8 to 255 letters, digits or . _ : / + = -',
      'idempotency-key',
    );
  const pseudonymise = await deps.keyring.pseudonymiser(access.tenantId, {
    actor: `consumer:${access.consumerId}`,
    correlationId: access.correlationId,
  });
  const described = `gateway-create\n${create.type}\n${create.integrationId}\n${canonicalize(create.content)}`;
  return { key, requestDigest: pseudonymise(described) };
}

/** The answer to a create whose key was claimed before (see the file comment). */
export async function replayCreate(
  deps: Deps,
  access: GatewayAccess,
  request: FhirWriteRequest,
  scope: string,
  claim: { requestDigest: string },
  earlier: ClaimedKey,
): Promise<WriteOutcome> {
  if (earlier.requestDigest !== claim.requestDigest)
    throw new WriteRefused(
      422,
      'business-rule',
      `this Idempotency-Key was used for a different request in the last ${IDEMPOTENCY_KEY_HOURS} hours`,
      'idempotency-key-reused',
    );
  const type = earlier.resourceType as ResourceType;
  const created = { tenantId: access.tenantId, integrationId: earlier.integrationId, resourceType: type };
  const resourceId =
    (await vendorIdOfCreate(deps.pool, { ...created, resourceId: earlier.resourceId })) ?? earlier.resourceId;
  const row = await readWinningRecord(deps.pool, access.tenantId, type, resourceId);
  if (!row || row.integrationId !== earlier.integrationId)
    throw new WriteRefused(
      410,
      'not-found',
      `the ${type} this Idempotency-Key created is no longer stored`,
      'idempotency-gone',
    );
  const plain = await decryptRecord(row.ciphertext, { ...created, resourceId }, (t, v) =>
    deps.keyring.dataKey(t, v, { actor: `consumer:${access.consumerId}`, correlationId: access.correlationId }),
  );
  const resource = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
  plain.fill(0);
  // A read of what was created: audited as served, nothing queued.
  return answerStored(deps.pool, access, request, {
    type,
    scope,
    interaction: 'create',
    row,
    resource,
    status: 201,
    count: 1,
    reason: 'idempotent-replay',
    headers: { 'idempotent-replayed': 'true' },
  });
}
