/**
 * Key rotation, one workflow per rotation — the playbooks (DESIGN §5):
 *   KEK: new version primary → keys rewrapped in resumable batches → sample unwraps → grace timer →
 *        decryption floor raised → old version scheduled for destruction.
 *   Tenant DEK: new DEK for writes → records re-encrypted in batches → none left under old versions →
 *        grace timer → stragglers moved → old DEK destroyed (v1 too: pseudonyms have their own stored key).
 *   Signing key: successor published → vendor JWKS cache waited out → kid switched → workers' row
 *        cache + vendor cache waited out → old key retired.
 *   Webhook secret: new secret current, old one still accepted for the grace window, then retired.
 *   Payload key: new key for new payloads; old keys stay readable by id.
 * A failure after the first change compensates back to a consistent state (non-cancellable, so a
 * cancelled rotation is rolled back too) and the result says `rolled-back` and what it did.
 * The batch loops (KEK rewrap, DEK re-encryption) continue as new after `maxBatchesPerRun` batches or
 * when Temporal suggests it, carrying the steps, versions, phase and counts: a tenant with millions of
 * records stays far below the history limit. A parent (breach containment) sees one child throughout.
 * Its input, result, query and signal are in key-rotation-api.ts.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { KeyRotationActivities } from '../activities/index.js';
import type { RotationActor } from '../activities/key-rotation.js';
import type { ReencryptionCheck } from '../lib/keys/record-reencryption.js';
import { keyRotationStatusQuery, rotationSwitchedSignal } from './key-rotation-api.js';
import type {
  BatchPhase,
  CarriedRotation,
  KeyKind,
  KeyRotationInput,
  KeyRotationResult,
  RotationStep,
} from './key-rotation-api.js';
import { keyRotationPreset } from './presets.js';

const DAY = 24 * 3600;
/** Production grace periods: long enough for every cache (DEKs 5 min, rows 15 s) and for a second look. */
const DEFAULT_GRACE_SECONDS: Record<KeyKind, number> = {
  kek: 7 * DAY,
  'tenant-dek': DAY,
  'signing-key': 0,
  'webhook-secret': DAY,
  'payload-key': 0,
};
/**
 * Workers cache integration rows (and so the current kid) for EHR_CREDENTIAL_CACHE_SECONDS
 * (lib/vendors/credentials.ts), as the activity that published the successor reports it; 15 s in histories
 * recorded before it reported it.
 */
const CREDENTIAL_CACHE_SECONDS = 15;
const KEK_VERIFY_SAMPLE = 20;
const DEK_VERIFY_SAMPLE = 20;
/** Re-encryption passes before records still under an older key fail (and roll back) the rotation. */
const DEK_VERIFY_PASSES = 3;
const DEFAULT_MAX_BATCHES_PER_RUN = 500;

const act = proxyActivities<KeyRotationActivities>(keyRotationPreset);

export async function keyRotation(input: KeyRotationInput): Promise<KeyRotationResult> {
  const { carried } = input;
  const steps: RotationStep[] = carried?.steps ?? [];
  setHandler(keyRotationStatusQuery, () => steps);
  const note = (step: string, detail?: Record<string, unknown>): void => {
    steps.push(detail ? { step, at: new Date().toISOString(), detail } : { step, at: new Date().toISOString() });
  };
  const actor: RotationActor = {
    requestedBy: input.requestedBy,
    reason: input.reason,
    ...(input.incidentId ? { incidentId: input.incidentId } : {}),
  };
  if (input.kind === 'tenant-dek') required(input.tenantId, 'tenantId');
  if (input.kind === 'signing-key' || input.kind === 'webhook-secret') required(input.integrationId, 'integrationId');
  const scope = input.tenantId ?? input.integrationId ?? 'global';
  const grace = input.graceSeconds ?? DEFAULT_GRACE_SECONDS[input.kind];
  const batchSize = input.batchSize ?? 500;
  // Histories recorded before batch loops could continue as new replay without it.
  const mayContinueAsNew = patched('key-rotation-continue-as-new');
  const continuedAsNew = carried?.continuedAsNew ?? 0;
  if (!carried) {
    await act.recordRotationEvent(actor, { phase: 'started', kind: input.kind, scope });
    note('started', { scope, reason: input.reason });
  }

  /** Tells a parent workflow that the rotation has switched to the new key (see rotationSwitchedSignal). */
  const announceSwitch = async (): Promise<void> => {
    const { parent, workflowId } = workflowInfo();
    if (!parent || !patched('announce-key-switch')) return;
    try {
      await getExternalWorkflowHandle(parent.workflowId, parent.runId).signal(rotationSwitchedSignal, workflowId);
    } catch {
      // The parent has closed: nobody is waiting for the switch any more.
    }
  };

  /** Runs the forward steps after the first change; on failure runs `undo` and reports a rollback. */
  const guarded = async (
    forward: () => Promise<void>,
    undo: () => Promise<Record<string, unknown>>,
  ): Promise<KeyRotationResult> => {
    try {
      await forward();
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      const failure = describeFailure(err);
      note('failed', { ...failure, ...failureMessage(err) });
      const undone = await CancellationScope.nonCancellable(async () => {
        const detail = await undo();
        await act.recordRotationEvent(actor, {
          phase: 'rolled_back',
          kind: input.kind,
          scope,
          detail: { ...failure, ...detail },
        });
        return detail;
      });
      note('rolled back', undone);
      return { kind: input.kind, steps, outcome: 'rolled-back', continuedAsNew };
    }
    await act.recordRotationEvent(actor, { phase: 'completed', kind: input.kind, scope });
    note('completed');
    return { kind: input.kind, steps, outcome: 'completed', continuedAsNew };
  };

  /**
   * Drains a batch loop of `phase`, counting over every run; after `maxBatchesPerRun` batches (or when
   * Temporal suggests it) with work left, continues as new from this phase with the count so far.
   */
  const moved: Record<BatchPhase, number> = { switch: 0, stragglers: 0 };
  if (carried) moved[carried.phase] = carried.moved;
  const maxBatches = input.maxBatchesPerRun ?? DEFAULT_MAX_BATCHES_PER_RUN;
  let batches = 0; // in this run, over every loop
  type Batch = () => Promise<{ done: number; remaining: number }>;
  const drain = async (
    phase: BatchPhase,
    versions: { version: number; previous: number },
    batch: Batch,
  ): Promise<number> => {
    for (let remaining = Infinity; remaining > 0;) {
      const b = await batch();
      moved[phase] += b.done;
      remaining = b.remaining;
      batches += 1;
      const runIsLong = batches >= maxBatches || workflowInfo().continueAsNewSuggested;
      if (remaining > 0 && mayContinueAsNew && runIsLong) {
        const next: CarriedRotation = {
          steps,
          ...versions,
          phase,
          moved: moved[phase],
          continuedAsNew: continuedAsNew + 1,
        };
        await continueAsNew<typeof keyRotation>({ ...input, carried: next });
      }
      if (b.done === 0 && remaining > 0) await sleep('1 second');
    }
    return moved[phase];
  };
  /** A continued run resumes in the phase its predecessor was draining. */
  const inSwitchPhase = (carried?.phase ?? 'switch') === 'switch';

  switch (input.kind) {
    case 'kek': {
      const { version, previous } = carried ?? (await act.rotateKekVersion(actor));
      if (!carried) note('new KEK version is primary', { version, previous });
      const rewrapAll = (phase: BatchPhase) =>
        drain(phase, { version, previous }, async () => {
          const b = await act.rewrapKeyBatch(actor, batchSize);
          return { done: b.moved, remaining: b.remaining };
        });
      return guarded(
        async () => {
          if (inSwitchPhase) {
            note('keys rewrapped', { moved: await rewrapAll('switch') });
            note('sample unwraps verified', await act.verifyKekSample(actor, version, KEK_VERIFY_SAMPLE));
            await announceSwitch();
            await sleep(grace * 1000);
          }
          // Processes that had not yet re-read the primary (30 s) may have wrapped new keys under the old one.
          note('grace period over', { seconds: grace, stragglersRewrapped: await rewrapAll('stragglers') });
          await act.raiseKekFloor(actor, version);
          note('decryption floor raised', { floor: version });
          // Past the floor there is nothing to roll back: the old version is refused below the floor
          // whether or not its destruction could be scheduled, so a failure here is reported, not undone.
          try {
            note('old version retired', { version: previous, ...(await act.retireKekVersion(actor, previous)) });
          } catch (err) {
            note('old version not scheduled for destruction (below the floor, so refused anyway)', {
              version: previous,
              ...describeFailure(err),
            });
          }
        },
        async () => ({
          ...(await act.rollBackKekRotation(actor, previous, version)),
          primary: previous,
          active: version,
          dualRead: true,
        }),
      );
    }
    case 'tenant-dek': {
      const tenantId = required(input.tenantId, 'tenantId');
      const { keyVersion, previous } = carried
        ? { keyVersion: carried.version, previous: carried.previous }
        : await act.rotateTenantDek(actor, tenantId);
      if (!carried) note('new DEK is primary for writes', { keyVersion, previous });
      if (previous === null)
        return guarded(
          async () => undefined,
          async () => ({}),
        );
      const reencryptAll = (phase: BatchPhase) =>
        drain(phase, { version: keyVersion, previous }, async () => {
          const b = await act.reencryptTenantBatch(actor, tenantId, keyVersion, batchSize);
          return { done: b.reencrypted, remaining: b.remaining };
        });
      /** The check behind "verified": records counted by their headers; any still under an older key go round again. */
      const verifyByHeaders = async (): Promise<ReencryptionCheck> => {
        for (let pass = 1; ; pass += 1) {
          const check = await act.verifyTenantReencryption(actor, tenantId, keyVersion, DEK_VERIFY_SAMPLE);
          if (check.underOlderKeys === 0) return check;
          if (pass === DEK_VERIFY_PASSES) {
            const left = `${check.underOlderKeys} records are still under an older key after ${pass} checks`;
            throw ApplicationFailure.nonRetryable(left, 'REENCRYPTION_INCOMPLETE');
          }
          const total = await reencryptAll('switch');
          note('records still under an older key, re-encrypted again', { underOlderKeys: check.underOlderKeys, total });
        }
      };
      return guarded(
        async () => {
          if (inSwitchPhase) {
            note('records re-encrypted', { count: await reencryptAll('switch') });
            if (patched('verify-reencryption-by-header')) {
              const check = await verifyByHeaders();
              const { records, sampleDecrypted } = check;
              note('verified: no record left under an older key', { records, underOlderKeys: 0, sampleDecrypted });
            } else {
              note('verified: no record left under an older key', { remaining: 0 });
            }
            await announceSwitch();
            await sleep(grace * 1000);
          }
          note('grace period over', { seconds: grace, stragglersReencrypted: await reencryptAll('stragglers') });
          note('old DEK retired', { keyVersion: previous, ...(await act.retireTenantDek(actor, tenantId, previous)) });
        },
        async () => ({
          ...(await act.rollBackTenantDekRotation(actor, tenantId, previous, keyVersion)),
          primary: previous,
          decryptOnly: keyVersion,
        }),
      );
    }
    case 'signing-key': {
      const integrationId = required(input.integrationId, 'integrationId');
      const published = await act.publishSigningKeySuccessor(actor, integrationId);
      const { kid, previousKid, jwksCacheSeconds } = published;
      note('successor published in the JWKS', { kid });
      const cache = input.vendorJwksCacheSeconds ?? jwksCacheSeconds;
      const rows = published.credentialCacheSeconds ?? CREDENTIAL_CACHE_SECONDS;
      let activated = false;
      return guarded(
        async () => {
          await sleep(cache * 1000);
          note('vendor JWKS cache waited out', { seconds: cache });
          await act.activateSigningKey(actor, integrationId, kid);
          activated = true;
          note('assertions signed with the new kid', { kid, previousKid });
          await announceSwitch();
          await sleep((rows + cache) * 1000);
          await act.retireSigningKey(actor, integrationId, previousKid);
          note('old key retired', { kid: previousKid });
        },
        async () => {
          const restored = await act.rollBackSigningKeyRotation(actor, integrationId, previousKid, kid);
          // A new key that signed stays published until workers' cached rows and vendor caches turn over.
          if (activated) {
            await sleep((rows + cache) * 1000);
            await act.retireSigningKey(actor, integrationId, kid);
          }
          return { ...restored, currentKid: previousKid, retiredKid: kid };
        },
      );
    }
    case 'webhook-secret': {
      const integrationId = required(input.integrationId, 'integrationId');
      const { version, previousVersion } = await act.addWebhookSecretVersion(actor, integrationId);
      note('new secret is current; both accepted', { version, previousVersion });
      if (previousVersion === null)
        return guarded(
          async () => undefined,
          async () => ({}),
        );
      return guarded(
        async () => {
          await sleep(grace * 1000);
          await act.retireWebhookSecretVersion(actor, integrationId, previousVersion);
          note('old secret refused', { version: previousVersion });
          await announceSwitch();
        },
        async () => ({ ...(await act.rollBackWebhookSecretRotation(actor, integrationId)) }),
      );
    }
    case 'payload-key': {
      const { keyId, version } = await act.rotatePayloadKeyVersion(actor);
      note('new payload key for new payloads; older keys stay readable', { keyId, version });
      return guarded(
        async () => undefined,
        async () => ({}),
      );
    }
  }
}

function required(value: string | undefined, field: string): string {
  if (!value)
    throw ApplicationFailure.nonRetryable(`${field} is required for this kind of rotation`, 'INVALID_ARGUMENT');
  return value;
}

/** The failure's message for the rotation's steps (what `keys rotate --wait` prints); not for audit rows. */
function failureMessage(err: unknown): { message?: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error && cause.message ? { message: cause.message.slice(0, 300) } : {};
}

function describeFailure(err: unknown): Record<string, unknown> {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const code =
    cause instanceof ApplicationFailure
      ? (cause.type ?? 'UNCLASSIFIED')
      : cause instanceof Error
        ? cause.name
        : 'UNCLASSIFIED';
  return err instanceof ActivityFailure ? { errorCode: code, activity: err.activityType } : { errorCode: code };
}
