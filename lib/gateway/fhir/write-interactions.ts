/**
 * Create and update (PUT, PATCH) as the gateway decides them, in this order: the body (write-body.ts), the
 * incident freeze, the stored record and If-Match (update), the R4 validator (validate.ts), the purposes, the
 * integration's write policy (lib/writeback/authority.ts), then one transaction (write-store.ts). An update goes
 * to the integration holding the record (the winning stored copy, as reads choose it); a create to the tenant's
 * only integration, else the one X-Ehr-Integration names. The answer is the stored local version as the consumer
 * reads it (minimised for its purpose), with its ETag, Last-Modified and Location. A create whose Idempotency-Key
 * the consumer sent before stores nothing and answers what that request created (write-replay.ts).
 */
import { randomUUID } from 'node:crypto';
import { decryptRecord } from '../../crypto/envelope.js';
import type { ResourceType } from '../../domain.js';
import { PURPOSE_POLICIES } from '../../fhir/classification.js';
import type { Purpose } from '../../fhir/classification.js';
import { minimiseForPurpose } from '../../fhir/minimise.js';
import { getIntegration, listIntegrations } from '../../integrations/repository.js';
import type { Integration } from '../../integrations/repository.js';
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Pool } from '../../store/pool.js';
import { readWinningRecord } from '../../store/record-reads.js';
import type { TypeWritePolicy } from '../../writeback/authority.js';
import { writePolicyFor } from '../../writeback/authority.js';
import type { GatewayAccess } from '../access.js';
import { FreezeGate } from './freeze.js';
import { WriteRefused, applyJsonPatch, patchBody, resourceBody } from './write-body.js';
import type { OutcomeIssue } from './write-body.js';
import {
  changedElements,
  contentOf,
  createPayload,
  elementsNotStored,
  elementsToSend,
  mergeForUpdate,
  remoteOwned,
  updatePayload,
} from './write-changes.js';
import { createPending, vendorBaseOfLocalCopy } from './write-repository.js';
import type { LocalWrite, StoredWrite } from './write-store.js';
import { IdempotentReplay, storeLocalWrite } from './write-store.js';
import { answer, answerStored } from './write-answer.js';
import type { WriteOutcome } from './write-answer.js';
import { claimFor, replayCreate } from './write-replay.js';
import { validateFhirResource } from './validate.js';
import type { FhirWriteRequest } from './write-handler.js';

type Resource = Record<string, unknown>;

interface Deps {
  pool: Pool;
  keyring: TenantKeyring;
}

const issue = (code: string, expression: string, diagnostics: string): OutcomeIssue => ({
  severity: 'error',
  code,
  diagnostics,
  expression: [expression],
});

function validate(resource: Resource): void {
  const issues = validateFhirResource(resource);
  if (issues.length > 0)
    throw new WriteRefused(
      400,
      'invalid',
      'not a valid FHIR R4 resource',
      'invalid-resource',
      {},
      issues.map((i) => issue(i.code, i.expression, i.diagnostics)),
      { issues: issues.length },
    );
}

function refuseUnstored(type: ResourceType, sent: Resource, access: GatewayAccess, integration: { purpose: Purpose }) {
  const names = elementsNotStored(type, sent, [access.purpose, integration.purpose]);
  if (names.length > 0)
    throw new WriteRefused(
      422,
      'business-rule',
      'elements outside the purpose',
      'purpose-elements',
      {},
      names.map((n) => issue('business-rule', `${type}.${n}`, `${type}.${n} is not kept under this purpose`)),
      { elements: names },
    );
}

function refuseRemote(type: ResourceType, policy: TypeWritePolicy, changed: readonly string[], integrationId: string) {
  const remote = remoteOwned(policy, changed);
  if (remote.length > 0)
    throw new WriteRefused(
      422,
      'business-rule',
      'elements owned by the EHR',
      'write-policy',
      {},
      remote.map((e) =>
        issue('business-rule', `${type}.${e}`, `${type}.${e} is owned by the EHR (write policy of ${integrationId})`),
      ),
      { elements: remote },
    );
}

async function targetIntegration(pool: Pool, access: GatewayAccess, named: string | undefined): Promise<Integration> {
  const all = (await listIntegrations(pool, access.tenantId)).filter((i) => i.status !== 'revoked');
  const header = 'X-Ehr-Integration';
  if (named === undefined) {
    if (all.length === 1) return all[0]!;
    throw new WriteRefused(
      400,
      'invalid',
      `${header} is required: the tenant has ${all.length} integrations`,
      'target',
    );
  }
  const found = all.find((i) => i.id === named);
  // Another tenant's integration is answered as an unknown one.
  if (!found) throw new WriteRefused(400, 'invalid', `${header} names no integration of this tenant`, 'target');
  return found;
}

export async function createResource(
  deps: Deps,
  access: GatewayAccess,
  request: FhirWriteRequest,
  type: ResourceType,
  scope: string,
): Promise<WriteOutcome> {
  const body = resourceBody(request.body, request.headers.contentType, type);
  const gate = new FreezeGate(deps.pool, access.tenantId);
  const integration = await targetIntegration(deps.pool, access, request.headers.integration);
  await gate.check();
  if (!PURPOSE_POLICIES[integration.purpose].resourceTypes.includes(type))
    throw new WriteRefused(400, 'invalid', `integration ${integration.id} does not hold ${type}`, 'target');
  const content = contentOf(body);
  validate({ resourceType: type, ...content });
  refuseUnstored(type, content, access, integration);
  const policy = await writePolicyFor(deps.pool, { tenantId: access.tenantId, integrationId: integration.id }, type);
  if (!policy.create)
    throw new WriteRefused(
      422,
      'business-rule',
      `the write policy of ${integration.id} does not allow creating ${type}`,
      'write-policy',
    );
  const claim = await claimFor(deps, access, request, { type, integrationId: integration.id, content });
  const write: LocalWrite = {
    integrationId: integration.id,
    resourceType: type,
    resourceId: `local-${randomUUID()}`,
    interaction: 'create',
    scope,
    content,
    changed: Object.keys(content).sort(),
    payload: createPayload(type, content, policy),
    baseVersionId: null,
    ...(claim ? { idempotency: claim } : {}),
  };
  let stored: StoredWrite;
  try {
    stored = await storeLocalWrite(deps, access, write);
  } catch (err) {
    if (claim && err instanceof IdempotentReplay) return replayCreate(deps, access, request, scope, claim, err.earlier);
    throw err;
  }
  return {
    response: answer(access, request, type, stored, 201),
    committed: true,
    integrationId: integration.id,
    ...(stored.changeId ? { changeId: stored.changeId } : {}),
  };
}

function ifMatchVersion(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?([^"]*)"?\s*$/.exec(value);
  return m?.[1];
}

export async function updateResource(
  deps: Deps,
  access: GatewayAccess,
  request: FhirWriteRequest,
  type: ResourceType,
  id: string,
  interaction: 'update' | 'patch',
  scope: string,
): Promise<WriteOutcome> {
  const sentBody =
    interaction === 'update' ? resourceBody(request.body, request.headers.contentType, type, id) : undefined;
  const patch = interaction === 'patch' ? patchBody(request.body, request.headers.contentType) : undefined;
  const gate = new FreezeGate(deps.pool, access.tenantId);
  const row = await readWinningRecord(deps.pool, access.tenantId, type, id);
  await gate.check();
  if (!row) throw new WriteRefused(404, 'not-found', `${type}/${id} is not known (create with POST)`, 'not-found');
  const expected = ifMatchVersion(request.headers.ifMatch);
  if (expected !== undefined && expected !== row.versionId)
    throw new WriteRefused(412, 'conflict', `If-Match does not name the current version (${row.versionId})`, 'stale', {
      etag: `W/"${row.versionId}"`,
    });
  const key = { tenantId: access.tenantId, integrationId: row.integrationId, resourceType: type, resourceId: id };
  if (await createPending(deps.pool, key))
    throw new WriteRefused(
      409,
      'conflict',
      `${type}/${id} has not reached the EHR yet; retry after its create`,
      'create-pending',
    );
  const plain = await decryptRecord(row.ciphertext, key, (t, v) =>
    deps.keyring.dataKey(t, v, { actor: `consumer:${access.consumerId}`, correlationId: access.correlationId }),
  );
  const stored = JSON.parse(plain.toString('utf8')) as Resource;
  plain.fill(0);
  const sent = sentBody ?? applyJsonPatch(minimiseForPurpose(type, stored, access.purpose).resource, patch!);
  const integration = await getIntegration(deps.pool, row.integrationId);
  const merged = mergeForUpdate(type, stored, sent, access.purpose);
  validate({ resourceType: type, id, ...merged });
  refuseUnstored(type, contentOf(sent), access, integration);
  const changed = changedElements(stored, merged);
  const policy = await writePolicyFor(deps.pool, key, type);
  if (!policy.update && changed.length > 0)
    throw new WriteRefused(
      422,
      'business-rule',
      `the write policy of ${row.integrationId} does not allow updating ${type}`,
      'write-policy',
    );
  refuseRemote(type, policy, changed, row.integrationId);
  if (changed.length === 0) {
    // Nothing changes: the stored version stands; audited as served, nothing queued.
    return answerStored(deps.pool, access, request, {
      type,
      scope,
      interaction,
      row,
      resource: stored,
      status: 200,
      count: 0,
      reason: 'unchanged',
    });
  }
  const toSend = elementsToSend(policy, changed);
  const baseVersionId = row.versionId.startsWith('local-')
    ? await vendorBaseOfLocalCopy(deps.pool, key)
    : row.versionId;
  const result = await storeLocalWrite(deps, access, {
    integrationId: row.integrationId,
    resourceType: type,
    resourceId: id,
    interaction,
    scope,
    content: merged,
    changed,
    ...(toSend.length > 0 ? { payload: updatePayload(stored, merged, toSend) } : {}),
    baseVersionId,
    expectedVersionId: row.versionId,
    previousLastUpdated: row.lastUpdated,
  });
  return {
    response: answer(access, request, type, result, 200),
    committed: true,
    integrationId: row.integrationId,
    ...(result.changeId ? { changeId: result.changeId } : {}),
  };
}
