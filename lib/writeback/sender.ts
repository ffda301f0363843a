/**
 * Sends one outbox change through the vendor door (lib/vendors/vendor-client.ts: auth, TLS, audit) with every
 * guard the vendor honours, so a resend after a crash has no second effect:
 *   update — GET the vendor's current version, decide per element (decide.ts), PUT the vendor's resource with
 *     the local values applied, `If-Match: W/"<its version>"` and the change's Idempotency-Key. A 412 re-reads and
 *     decides again (bounded); 404/410 is a `deleted-remote` conflict, never a silent re-create. A resend after a
 *     crash finds the local values already there and sends nothing.
 *   create — POST with our identifier (system below, value = change id) and `If-None-Exist` on it where the
 *     vendor honours conditional create, and the Idempotency-Key: a resend finds the first one.
 * 409/422/400/403 and 405 are refusals (kept, with the OperationOutcome code); 429/5xx/network errors are thrown
 * and retried by the activity's policy (Retry-After honoured), the change staying pending.
 * What leaves (the result) is ids, element names, statuses and codes — never values.
 */
import type { AuditContext } from '../audit/chain.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import {
  MalformedVendorDataError,
  PolicyViolationError,
  VendorHttpError,
  WriteBackContendedError,
} from '../errors/index.js';
import { writesHeld } from '../incidents/holds.js';
import { getIntegration } from '../integrations/repository.js';
import type { CredentialDirectory } from '../vendors/credentials.js';
import { writeSupportFor } from '../vendors/profiles/writes.js';
import { isVendorId } from '../vendors/profiles/types.js';
import type { VendorClient } from '../vendors/vendor-client.js';
import type { VendorResponse } from '../vendors/vendor-call.js';
import type { TypeWritePolicy } from './authority.js';
import { elementAuthority, writePolicyFor } from './authority.js';
import { applyElements, decideElements } from './decide.js';
import { openChange } from './outbox.js';
import type { OutboxChange } from './outbox-repository.js';
import { countSendAttempt, getOutboxChange } from './outbox-repository.js';
import type { SettleDeps, VendorAnswer } from './settle.js';
import { settleConflict, settleRefused, settleSent } from './settle.js';

/** The identifier system of ours a created resource carries (value: the outbox change id). */
export const CHANGE_IDENTIFIER_SYSTEM = 'urn:ehr-connectors:outbox-change';
/** How many 412s in a row one send accepts before it gives up for now (retried later by the activity). */
export const MAX_PRECONDITION_RETRIES = 3;

const REFUSALS = new Set([400, 403, 405, 409, 422]);

export interface SenderDeps extends SettleDeps {
  vendors: VendorClient;
  directory: CredentialDirectory;
}

export type SendResult =
  | { outcome: 'sent'; vendorStatus: number; vendorVersionId: string | null; applied: string[]; already: boolean }
  | { outcome: 'refused'; vendorStatus: number | null; outcomeCode: string | null }
  | { outcome: 'conflict'; conflictId: string; reason: 'stale-write' | 'deleted-remote'; elements: string[] }
  | { outcome: 'held'; incidentId: string }
  /** The integration is not active (revoked, suspended, awaiting its client id): nothing is sent until it is. */
  | { outcome: 'suspended'; status: string }
  | { outcome: 'skipped'; status: string };

function parseResource(res: VendorResponse, type: string): Record<string, unknown> | undefined {
  if (res.body.byteLength === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new MalformedVendorDataError(type, 'write answer is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || (parsed as { resourceType?: unknown }).resourceType !== type)
    throw new MalformedVendorDataError(type, `write answer is not a ${type}`);
  return parsed as Record<string, unknown>;
}

/** The vendor's id and version of an answer: its body's, else Location (`…/Type/id/_history/n`) and ETag. */
function answerOf(res: VendorResponse, type: string, fallbackId: string): VendorAnswer {
  const resource = parseResource(res, type);
  const meta = (resource?.meta ?? {}) as { versionId?: unknown; lastUpdated?: unknown };
  const location = /\/([A-Za-z0-9.-]{1,64})\/_history\/([A-Za-z0-9.-]{1,64})/.exec(res.headers.get('location') ?? '');
  const etag = /^W\/"([^"]+)"$/.exec(res.headers.get('etag') ?? '')?.[1];
  const id = typeof resource?.id === 'string' ? resource.id : (location?.[1] ?? fallbackId);
  const versionId = typeof meta.versionId === 'string' ? meta.versionId : (etag ?? location?.[2] ?? null);
  const lastUpdated = typeof meta.lastUpdated === 'string' ? meta.lastUpdated : null;
  return { status: res.status, resourceId: id, versionId, lastUpdated, ...(resource ? { resource } : {}) };
}

function refusalOf(err: unknown): { status: number; outcomeCode: string | null } | undefined {
  if (err instanceof VendorHttpError && REFUSALS.has(err.status))
    return { status: err.status, outcomeCode: err.outcomeCode ?? null };
  return undefined;
}

const gone = (err: unknown): boolean => err instanceof VendorHttpError && (err.status === 404 || err.status === 410);
const stale = (err: unknown): boolean => err instanceof VendorHttpError && err.status === 412;
const versionConflict = (err: unknown): boolean => err instanceof VendorHttpError && err.status === 409;

export async function sendChange(deps: SenderDeps, changeId: string, audit: AuditContext): Promise<SendResult> {
  const change = await getOutboxChange(deps.pool, changeId);
  if (!change) return { outcome: 'skipped', status: 'missing' };
  if (change.status !== 'pending') return { outcome: 'skipped', status: change.status };
  const hold = await writesHeld(deps.pool, change.integrationId);
  if (hold) return { outcome: 'held', incidentId: hold.incident_id };
  // Its status read fresh: a restore that this worker's cache has not heard of yet must not fail the send.
  const fresh = await getIntegration(deps.pool, change.integrationId);
  if (fresh.status !== 'active') return { outcome: 'suspended', status: fresh.status };
  let integration = await deps.directory.integration(change.integrationId);
  if (integration.status !== 'active' || integration.credentialGeneration !== fresh.credentialGeneration) {
    deps.directory.forget(change.integrationId);
    deps.vendors.forget(change.integrationId);
    integration = await deps.directory.integration(change.integrationId);
  }
  if (integration.tenantId !== change.tenantId)
    throw new PolicyViolationError('tenant-isolation', `change ${change.id} names another tenant's integration`);
  const type = change.resourceType as ResourceType;
  const policy = await writePolicyFor(deps.pool, change, type);
  await countSendAttempt(deps.pool, change.id);
  const ctx = { ...audit, purpose: `writeback.${change.kind}` };
  try {
    return change.kind === 'create'
      ? await sendCreate(deps, change, policy, integration, ctx)
      : await sendUpdate(deps, change, policy, integration, ctx);
  } catch (err) {
    const refusal = refusalOf(err);
    if (!refusal) throw err;
    await settleRefused(deps, change, refusal, audit);
    return { outcome: 'refused', vendorStatus: refusal.status, outcomeCode: refusal.outcomeCode };
  }
}

type Ctx = AuditContext & { purpose: string };

async function sendCreate(
  deps: SenderDeps,
  change: OutboxChange,
  policy: TypeWritePolicy,
  integration: { vendor: string; purpose: Purpose },
  ctx: Ctx,
): Promise<SendResult> {
  const payload = await openChange(deps.pool, deps.keyring, change.id);
  if (payload.kind !== 'create') throw new MalformedVendorDataError(change.resourceType, 'change payload kind');
  const support = isVendorId(integration.vendor) ? writeSupportFor(integration.vendor) : undefined;
  if (!policy.create || !support || !(support.conditionalCreate || support.idempotencyKey)) {
    // Not ours to create (the policy changed since), or the vendor has no way to make a resend harmless.
    await settleRefused(deps, change, { status: null, outcomeCode: policy.create ? 'unsafe-create' : 'policy' }, ctx);
    return { outcome: 'refused', vendorStatus: null, outcomeCode: policy.create ? 'unsafe-create' : 'policy' };
  }
  const { id: _id, meta: _meta, ...body } = payload.resource;
  for (const element of Object.keys(body)) if (elementAuthority(policy, element) === 'local-only') delete body[element];
  const ours = { system: CHANGE_IDENTIFIER_SYSTEM, value: change.id };
  const identifiers = Array.isArray(body.identifier) ? (body.identifier as unknown[]) : [];
  const resource = { ...body, resourceType: change.resourceType, identifier: [...identifiers, ours] };
  const res = await deps.vendors.create(change.integrationId, change.resourceType, resource, {
    ...ctx,
    idempotencyKey: change.idempotencyKey,
    ...(support.conditionalCreate ? { ifNoneExist: `identifier=${ours.system}|${ours.value}` } : {}),
  });
  const answer = answerOf(res, change.resourceType, change.resourceId);
  await settleSent(
    deps,
    change,
    integration.purpose,
    answer,
    { elements: change.changedElements, alreadyApplied: res.status === 200 },
    ctx,
  );
  return {
    outcome: 'sent',
    vendorStatus: res.status,
    vendorVersionId: answer.versionId,
    applied: change.changedElements,
    already: res.status === 200,
  };
}

async function sendUpdate(
  deps: SenderDeps,
  change: OutboxChange,
  policy: TypeWritePolicy,
  integration: { baseUrl: string; purpose: Purpose },
  ctx: Ctx,
): Promise<SendResult> {
  const { purpose } = integration;
  const payload = await openChange(deps.pool, deps.keyring, change.id);
  if (payload.kind !== 'update') throw new MalformedVendorDataError(change.resourceType, 'change payload kind');
  const base = integration.baseUrl.replace(/\/$/, '');
  const url = `${base}/${change.resourceType}/${change.resourceId}`;
  const deleted = async (): Promise<SendResult> => {
    const elements = Object.keys(payload.elements).sort();
    const sides = { local: payload.elements, remote: null };
    const c = await settleConflict(deps, change, { reason: 'deleted-remote', elements, sides }, ctx);
    return { outcome: 'conflict', conflictId: c.conflictId, reason: 'deleted-remote', elements };
  };
  const versionMoved = async (sent: string | null): Promise<boolean> => {
    try {
      const now = answerOf(
        await deps.vendors.get(change.integrationId, url, ctx),
        change.resourceType,
        change.resourceId,
      );
      return now.versionId !== sent;
    } catch (err) {
      if (gone(err)) return true;
      throw err;
    }
  };
  for (let attempt = 1; attempt <= MAX_PRECONDITION_RETRIES; attempt++) {
    let current: VendorAnswer;
    try {
      current = answerOf(
        await deps.vendors.get(change.integrationId, url, ctx),
        change.resourceType,
        change.resourceId,
      );
    } catch (err) {
      if (gone(err)) return deleted();
      throw err;
    }
    const vendor = current.resource ?? {};
    const decision = decideElements(policy, payload, vendor);
    if (decision.conflicted.length > 0) {
      const pick = (from: Record<string, unknown>) =>
        Object.fromEntries(decision.conflicted.map((e) => [e, from[e] ?? null]));
      const sides = { local: pick(payload.elements), remote: pick(vendor) };
      const c = await settleConflict(
        deps,
        change,
        { reason: 'stale-write', elements: decision.conflicted, sides },
        ctx,
      );
      return { outcome: 'conflict', conflictId: c.conflictId, reason: 'stale-write', elements: decision.conflicted };
    }
    if (decision.apply.length === 0) {
      // Nothing left to send: the vendor holds the local values (a resend after a crash), or keeps its own.
      await settleSent(deps, change, purpose, current, { elements: decision.already, alreadyApplied: true }, ctx);
      return {
        outcome: 'sent',
        vendorStatus: current.status,
        vendorVersionId: current.versionId,
        applied: [],
        already: true,
      };
    }
    const next = applyElements(vendor, payload.elements, decision.apply);
    try {
      const res = await deps.vendors.update(change.integrationId, change.resourceType, change.resourceId, next, {
        ...ctx,
        idempotencyKey: change.idempotencyKey,
        ...(current.versionId ? { ifMatch: `W/"${current.versionId}"` } : {}),
      });
      const answer = answerOf(res, change.resourceType, change.resourceId);
      await settleSent(deps, change, purpose, answer, { elements: decision.apply, alreadyApplied: false }, ctx);
      return {
        outcome: 'sent',
        vendorStatus: res.status,
        vendorVersionId: answer.versionId,
        applied: decision.apply,
        already: false,
      };
    } catch (err) {
      if (gone(err)) return deleted();
      // 412: the vendor's version moved on between our read and our write; read again and decide again. Some
      // servers (HAPI) answer a stale If-Match with 409: it is a version conflict only if the version moved.
      if (!stale(err) && !(versionConflict(err) && (await versionMoved(current.versionId)))) throw err;
    }
  }
  throw new WriteBackContendedError(change.id, MAX_PRECONDITION_RETRIES);
}
