/**
 * Activities of the key rotation workflow (workflows/key-rotation.ts). Each step is a library
 * operation that audits itself (KeyAdmin, signing-key rotation, webhook secrets, re-encryption) under
 * the rotation's requester and its workflow id as correlation id, and is safe to repeat: a retried
 * step that already happened changes nothing or moves on from where it stopped. Batch steps heartbeat.
 */
import { Context } from '@temporalio/activity';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { AuditContext } from '../lib/audit/chain.js';
import { earlierSuccessDetails } from '../lib/audit/earlier-success.js';
import { ConflictError } from '../lib/errors/index.js';
import { verifyKekSample } from '../lib/keys/kek-verification.js';
import { reencryptRecordBatch, verifyReencryption } from '../lib/keys/record-reencryption.js';
import type { ReencryptionCheck } from '../lib/keys/record-reencryption.js';
import {
  restorePreviousKekPrimary,
  restorePreviousSigningKey,
  restoreTenantPrimaryKey,
} from '../lib/keys/rotation-rollback.js';
import { destroyTenantKeyVersion, destroyUnusedKeyVersions } from '../lib/keys/tenant-keys.js';
import { getIntegration } from '../lib/integrations/repository.js';
import { activateSuccessorKey, publishSuccessorKey, retireKey } from '../lib/keys/signing-key-rotation.js';
import { profileFor } from '../lib/vendors/profiles/index.js';
import { addWebhookSecret, restorePreviousWebhookSecret, retireWebhookSecret } from '../lib/webhooks/secrets.js';
import { atActivityBoundary } from './boundary.js';
import type { KeyRotationActivityDeps } from './deps.js';

/** Who asked, and why: recorded on every audit event of the rotation. */
export interface RotationActor {
  requestedBy: string;
  reason: string;
  incidentId?: string;
}

function auditCtx(actor: RotationActor): AuditContext {
  const info = Context.current().info;
  return {
    actor: actor.requestedBy,
    correlationId: info.workflowExecution?.workflowId ?? `activity:${info.activityId}`,
  };
}

export function createKeyRotationActivities(deps: KeyRotationActivityDeps) {
  /**
   * The details of this rotation's earlier successful `action`, if any: the audit trail is the
   * idempotency record, so a step retried after its commit (reply lost, worker crashed) returns what
   * it did instead of creating a second key version.
   */
  const done = (action: string, tenantId?: string): Promise<Record<string, unknown> | undefined> => {
    const correlationId = Context.current().info.workflowExecution?.workflowId ?? '';
    return earlierSuccessDetails(deps.pool, { correlationId, action, ...(tenantId !== undefined ? { tenantId } : {}) });
  };
  return atActivityBoundary({
    async recordRotationEvent(
      actor: RotationActor,
      event: {
        phase: 'started' | 'completed' | 'rolled_back';
        kind: string;
        scope: string;
        detail?: Record<string, unknown>;
      },
    ): Promise<void> {
      await recordAuditEvent(deps.pool, {
        ...auditCtx(actor),
        action: `key.rotation.${event.phase}`,
        outcome: event.phase === 'rolled_back' ? 'failure' : 'success',
        tenantId: event.kind === 'tenant-dek' ? event.scope : null,
        integrationId: event.kind === 'signing-key' || event.kind === 'webhook-secret' ? event.scope : null,
        details: {
          kind: event.kind,
          scope: event.scope,
          reason: actor.reason,
          incidentId: actor.incidentId ?? null,
          ...event.detail,
        },
      });
    },

    // ---- KEK -----------------------------------------------------------------------------------
    async rotateKekVersion(actor: RotationActor): Promise<{ version: number; previous: number }> {
      const prior = await done('key.kek.rotated');
      if (prior) return { version: Number(prior['kekVersion']), previous: Number(prior['previousKekVersion']) };
      const out = await deps.admin.rotateKek(auditCtx(actor));
      return out;
    },

    /** One batch; the workflow loops until nothing is left, so a crash loses at most one batch's work. */
    async rewrapKeyBatch(actor: RotationActor, batchSize: number): Promise<{ moved: number; remaining: number }> {
      Context.current().heartbeat({ phase: 'rewrap' });
      const r = await deps.admin.rewrapDataKeys(batchSize, auditCtx(actor));
      return { moved: r.dataKeys + r.purposeKeys + r.tenantPurposeKeys + r.exportJobKeys, remaining: r.remaining };
    },

    /**
     * Unwraps a sample of the DEKs and of the pseudonym keys now wrapped under `version` (fresh unwraps, not
     * the keyring's cache).
     */
    async verifyKekSample(actor: RotationActor, version: number, sampleSize: number): Promise<{ verified: number }> {
      return verifyKekSample({ pool: deps.pool, kek: deps.kek }, version, sampleSize, auditCtx(actor));
    },

    async raiseKekFloor(actor: RotationActor, version: number): Promise<void> {
      const { admin, kek } = deps;
      await kek.refresh();
      if (kek.minDecryptionVersion() >= version) return; // already raised (a retry, or a later rotation)
      await admin.raiseKekFloor(version, auditCtx(actor));
    },

    /** The replaced version stops being usable and is scheduled for destruction after the configured delay. */
    async retireKekVersion(actor: RotationActor, version: number): Promise<{ destroyAfter: string }> {
      const { admin, kek } = deps;
      const state = (await kek.versions()).find((v) => v.version === version)?.state;
      if (state === 'destroy_scheduled' || state === 'destroyed') return { destroyAfter: 'already scheduled' };
      const { destroyAfter } = await admin.scheduleKekDestroy(version, auditCtx(actor));
      return { destroyAfter: destroyAfter.toISOString() };
    },

    async rollBackKekRotation(actor: RotationActor, previous: number, rotated: number): Promise<{ changed: boolean }> {
      const { kek, purposeKeys } = deps;
      const out = await restorePreviousKekPrimary(deps.pool, kek.id, previous, rotated, auditCtx(actor));
      await kek.refresh();
      purposeKeys.forget();
      return out;
    },

    // ---- tenant DEK ----------------------------------------------------------------------------
    async rotateTenantDek(
      actor: RotationActor,
      tenantId: string,
    ): Promise<{ keyVersion: number; previous: number | null }> {
      const prior = await done('key.dek.rotated', tenantId);
      if (prior)
        return {
          keyVersion: Number(prior['keyVersion']),
          previous: prior['previousKeyVersion'] === null ? null : Number(prior['previousKeyVersion']),
        };
      const out = await deps.admin.rotateTenantKey(tenantId, auditCtx(actor));
      deps.keyring.forget(tenantId);
      return out;
    },

    async reencryptTenantBatch(
      actor: RotationActor,
      tenantId: string,
      keyVersion: number,
      batchSize: number,
    ): Promise<{ reencrypted: number; remaining: number }> {
      Context.current().heartbeat({ phase: 're-encrypt' });
      const ctx = auditCtx(actor);
      const target = await deps.keyring.dataKey(tenantId, keyVersion, ctx);
      return reencryptRecordBatch(deps.pool, deps.keyring, { tenantId, target, batchSize }, ctx);
    },

    /** Counts the tenant's records by the DEK version their headers name; decrypts a sample under `keyVersion`. */
    async verifyTenantReencryption(
      actor: RotationActor,
      tenantId: string,
      keyVersion: number,
      sampleSize: number,
    ): Promise<ReencryptionCheck> {
      return verifyReencryption(deps.pool, deps.keyring, { tenantId, keyVersion, sampleSize }, auditCtx(actor));
    },

    /**
     * Destroys the superseded DEK — version 1 too: the pseudonym key it derives is stored first (its
     * own purpose key), so pseudonyms survive it. Older decrypt-only versions no record uses (a v1 kept
     * by rotations before the pseudonym key existed, a rolled-back rotation's key) go as well.
     */
    async retireTenantDek(
      actor: RotationActor,
      tenantId: string,
      keyVersion: number,
    ): Promise<{ destroyed: boolean; keptFor?: string; alsoDestroyed: number[] }> {
      const ctx = auditCtx(actor);
      await deps.keyring.ensurePseudonymKey(tenantId, ctx);
      const { keptFor } = await destroyTenantKeyVersion(deps.pool, tenantId, keyVersion, ctx);
      const { destroyed } = await destroyUnusedKeyVersions(deps.pool, tenantId, ctx);
      deps.keyring.forget(tenantId);
      return { destroyed: keptFor === undefined, ...(keptFor ? { keptFor } : {}), alsoDestroyed: destroyed };
    },

    async rollBackTenantDekRotation(
      actor: RotationActor,
      tenantId: string,
      previous: number,
      rotated: number,
    ): Promise<{ changed: boolean }> {
      const out = await restoreTenantPrimaryKey(deps.pool, tenantId, previous, rotated, auditCtx(actor));
      deps.keyring.forget(tenantId);
      return out;
    },

    // ---- integration signing key ---------------------------------------------------------------
    async publishSigningKeySuccessor(
      actor: RotationActor,
      integrationId: string,
      // credentialCacheSeconds: absent from results recorded before workers reported it.
    ): Promise<{ kid: string; previousKid: string; jwksCacheSeconds: number; credentialCacheSeconds?: number }> {
      const integration = await getIntegration(deps.pool, integrationId);
      const previousKid = integration.signingKid;
      if (!previousKid) throw new ConflictError('integration', integrationId, 'has no current signing key');
      const successor = await publishSuccessorKey(deps.pool, integrationId, auditCtx(actor), {
        secretsDir: deps.secretsDir,
      });
      return {
        kid: successor.kid,
        previousKid,
        jwksCacheSeconds: profileFor(integration.vendor).auth.jwksCacheSeconds.value,
        credentialCacheSeconds: deps.credentialCacheSeconds,
      };
    },

    async activateSigningKey(actor: RotationActor, integrationId: string, kid: string): Promise<void> {
      await activateSuccessorKey(deps.pool, integrationId, auditCtx(actor), { expectedKid: kid });
    },

    async retireSigningKey(actor: RotationActor, integrationId: string, kid: string): Promise<void> {
      await retireKey(deps.pool, integrationId, kid, auditCtx(actor));
    },

    async rollBackSigningKeyRotation(
      actor: RotationActor,
      integrationId: string,
      previousKid: string,
      newKid: string,
    ): Promise<{ changed: boolean }> {
      return restorePreviousSigningKey(deps.pool, integrationId, previousKid, newKid, auditCtx(actor));
    },

    // ---- webhook secret ------------------------------------------------------------------------
    async addWebhookSecretVersion(
      actor: RotationActor,
      integrationId: string,
    ): Promise<{ version: number; previousVersion: number | null }> {
      const prior = await done('webhook_secret.added');
      if (prior)
        return {
          version: Number(prior['version']),
          previousVersion: prior['previousVersion'] === null ? null : Number(prior['previousVersion']),
        };
      return addWebhookSecret(deps.pool, integrationId, auditCtx(actor), { secretsDir: deps.secretsDir });
    },

    async retireWebhookSecretVersion(actor: RotationActor, integrationId: string, version: number): Promise<void> {
      await retireWebhookSecret(deps.pool, integrationId, version, auditCtx(actor));
    },

    async rollBackWebhookSecretRotation(
      actor: RotationActor,
      integrationId: string,
    ): Promise<{ restoredVersion: number | null }> {
      return restorePreviousWebhookSecret(deps.pool, integrationId, auditCtx(actor));
    },

    // ---- payload key ---------------------------------------------------------------------------
    /** New payloads use the new key; older `payload-v<N>` keys stay readable by id, so histories still decode. */
    async rotatePayloadKeyVersion(actor: RotationActor): Promise<{ keyId: string; version: number }> {
      const prior = await done('key.payload.rotated');
      if (prior) return { keyId: String(prior['keyId']), version: Number(prior['version']) };
      return deps.purposeKeys.rotatePayloadKey(auditCtx(actor));
    },
  });
}
