/**
 * Constructs the real dependencies of each workflow's activities from validated configuration: the
 * pool, the key-encryption-key provider, the tenant keyring, the credential directory, the vendor
 * wrapper, key administration and the containment's Temporal client. This and the other files in
 * workers/ are the only places that build real clients and keys.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkerActivityDeps } from './worker-activities.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { storedSecretPolicyFromConfig } from '../lib/config/stored-secret-refs.js';
import { createKekProvider } from '../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../lib/keys/keyring.js';
import { KeyAdmin } from '../lib/keys/key-admin.js';
import { openPurposeKeys } from '../lib/keys/open-purpose-keys.js';
import { assertDatabaseReachable, createPool, describeDatabaseUrl, type Pool } from '../lib/store/pool.js';
import { auditSecretRefRefusal } from '../lib/store/secret-roots.js';
import { createCredentialDirectory } from '../lib/vendors/credentials.js';
import { RevocationWatcher } from '../lib/revocation/watcher.js';
import { VendorClient } from '../lib/vendors/vendor-client.js';
import { BREAKER_PRESETS, CircuitBreakers, type BreakerTransition } from '../lib/vendors/circuit-breaker.js';
import { parseRateOverrides } from '../lib/vendors/endpoint-queues.js';
import type { EndpointQueuePolicy } from '../lib/vendors/endpoint-queues.js';
import { recordBreakerTransition } from '../lib/integrations/health.js';
import { FileAuditAnchor } from '../lib/audit/anchor.js';
import { registerDevSandboxAdmins, sandboxAdminFor } from '../lib/incidents/sandbox-admins.js';
import { createPayloadCodec } from '../lib/crypto/payload-codec.js';
import { temporalOutboxNotifier } from './outbox-notifier.js';
import { lazyConflictNotifier, lazyOutboxNotifier } from './outbox-notifier-lazy.js';

async function recordBreakerChange(pool: Pool, t: BreakerTransition, actor: string): Promise<void> {
  try {
    await recordBreakerTransition(pool, t, actor);
    await recordAuditEvent(pool, {
      actor,
      action: `integration.circuit_${t.state.replace('-', '_')}`,
      outcome: 'success',
      tenantId: t.tenantId,
      integrationId: t.integrationId,
      correlationId: randomUUID(),
      details: {
        consecutiveFailures: t.consecutiveFailures,
        lastErrorCode: t.lastErrorCode,
        retryAt: t.retryAt?.toISOString() ?? null,
      },
    });
  } catch {
    // Best effort by design: the breaker already acted in memory; the next transition rewrites the row.
  }
}

export interface WorkerDeps extends WorkerActivityDeps {
  pool: Pool;
  kek: KeyHierarchy;
  vendors: VendorClient;
  revocations: RevocationWatcher;
  endpointQueues: EndpointQueuePolicy;
  close(): Promise<void>;
}

export async function buildWorkerDeps(config: Config): Promise<WorkerDeps> {
  const pool = createPool(config.DATABASE_URL, config.WORKER_MAX_CONCURRENT_ACTIVITIES + 4);
  await assertDatabaseReachable(pool, describeDatabaseUrl(config.DATABASE_URL));
  const actor = `worker:${os.hostname()}:${process.pid}`;
  // EHR_KEK_PROVIDER selects the backend (local files or AWS KMS); its version states live in kek_versions.
  let kek: KeyHierarchy;
  try {
    kek = await KeyHierarchy.open({
      pool,
      backend: await createKekProvider(config),
      audit: { actor, correlationId: `worker-start:${randomUUID()}` },
    });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const keyring = new TenantKeyring({ pool, kek });
  // Dev stack: its sandboxes' admin endpoints, for incident recovery (a drill) to register fresh credentials.
  registerDevSandboxAdmins(config.EHR_DEV_SANDBOX_ADMINS);
  // Stored secret references are checked against this process's configuration before every use; a refusal is audited.
  const directory = createCredentialDirectory(pool, {
    cacheTtlMs: config.EHR_CREDENTIAL_CACHE_SECONDS * 1000,
    secretPolicy: storedSecretPolicyFromConfig(config),
    onRefusal: (i, err) =>
      auditSecretRefRefusal(pool, { actor, correlationId: randomUUID() }, err, {
        stage: 'use',
        tenantId: i.tenantId,
        integrationId: i.id,
      }),
  });
  // Key rotation (workflows/key-rotation.ts): caches of this process are dropped as each change commits.
  const purposeKeys = await openPurposeKeys(config, { pool, kek, actor });
  const admin = new KeyAdmin({
    pool,
    kek,
    destroyDelaySeconds: config.EHR_KEY_DESTROY_DELAY_SECONDS,
    forget: { tenant: (t) => keyring.forget(t), purposeKeys: () => purposeKeys.forget() },
  });
  // Revocation fails closed: every vendor request passes the watcher's gate (memory kept current by
  // LISTEN ehr_revocations; a database read per call whenever the listener is down).
  const revocations = new RevocationWatcher({ databaseUrl: config.DATABASE_URL, db: pool });
  // Circuit breaker per integration: live state in memory, every transition written for operators.
  const preset = BREAKER_PRESETS[config.EHR_CIRCUIT_BREAKER];
  const breakerWrites = new Map<string, Promise<void>>();
  const breaker = new CircuitBreakers({
    preset: { ...preset, coolDownMs: config.EHR_CIRCUIT_COOLDOWN_MS ?? preset.coolDownMs },
    // The in-memory breaker acts either way; a lost row only delays what `integrations list` shows.
    // Each transition is also an audit event, so an outage's start and end are in the trail.
    // Written one after another per integration, so the trail keeps the order they happened in.
    onTransition: (t) => {
      const previous = breakerWrites.get(t.integrationId) ?? Promise.resolve();
      breakerWrites.set(
        t.integrationId,
        previous.then(() => recordBreakerChange(pool, t, actor)),
      );
    },
  });
  const vendors = new VendorClient({
    breaker,
    credentials: (id) => directory.credentials(id),
    gate: (id) => revocations.check(id),
    revocationTarget: (id) => directory.revocationTarget(id),
    audit: async (event) => {
      await recordAuditEvent(pool, event);
    },
    timeoutMs: config.EHR_VENDOR_TIMEOUT_MS,
    maxResponseBytes: config.EHR_VENDOR_MAX_RESPONSE_BYTES,
    actor,
  });
  // On every change: drop the cached row and tokens; on revocation also revoke the held token at the
  // vendor (RFC 7009). The watcher acknowledges (and revokeIntegration returns) once the requests
  // that had passed the gate before the change have finished.
  revocations.onChange((state) => {
    directory.forget(state.integrationId);
    if (state.status === 'active') {
      vendors.forget(state.integrationId);
      return vendors.settled(state.integrationId);
    }
    // revokeAtVendor drops the tokens synchronously, before anything is awaited.
    const atVendor = vendors.revokeAtVendor(state.integrationId).catch(() => undefined);
    return Promise.all([vendors.settled(state.integrationId), atVendor]);
  });
  await revocations.start();
  // Breach containment: a Temporal client (with the payload codec: schedules' actions are encrypted)
  // connected on first use, the audit signer and anchor for evidence checkpoints, and evidence files beside
  // the anchor (outside the database). The purpose keys are the ones opened above for key rotation.
  let temporalClientPromise: Promise<Client> | undefined;
  const temporalClient = (): Promise<Client> => {
    temporalClientPromise ??= Connection.connect({ address: config.TEMPORAL_ADDRESS }).then(
      (connection) =>
        new Client({
          connection,
          namespace: config.TEMPORAL_NAMESPACE,
          dataConverter: { payloadCodecs: [createPayloadCodec(purposeKeys.payload)] },
        }),
    );
    return temporalClientPromise;
  };
  const endpointQueues = {
    mainTaskQueue: config.TEMPORAL_TASK_QUEUE,
    overrides: parseRateOverrides(config.EHR_VENDOR_RATE_LIMITS),
  };
  return {
    pool,
    kek,
    vendors,
    revocations,
    endpointQueues,
    sync: { pool, keyring, vendors, directory, defaultPageSize: config.EHR_SYNC_PAGE_SIZE, endpointQueues },
    // Bulk Data files: 1,000 lines per store transaction (and heartbeat); a line over 16 MiB is refused.
    bulk: { pool, keyring, vendors, directory, batchSize: 1_000, maxLineBytes: 16 * 1024 * 1024 },
    keyRotation: {
      pool,
      keyring,
      admin,
      kek,
      purposeKeys,
      secretsDir: config.EHR_SECRETS_DIR,
      credentialCacheSeconds: config.EHR_CREDENTIAL_CACHE_SECONDS,
    },
    containment: {
      pool,
      keyring,
      vendors,
      temporal: temporalClient,
      signer: purposeKeys.auditSigning,
      anchor: new FileAuditAnchor(config.EHR_AUDIT_ANCHOR_PATH),
      checkpointWriter: config.EHR_AUDIT_CHECKPOINT_WRITER === 'on',
      evidenceDir: path.join(path.dirname(path.resolve(config.EHR_AUDIT_ANCHOR_PATH)), 'evidence'),
      secretsDir: config.EHR_SECRETS_DIR,
      jwksPublicUrl: config.JWKS_PUBLIC_URL,
      sandboxAdminFor,
      outbox: {
        changesQueued: async (scope) =>
          temporalOutboxNotifier(await temporalClient(), config.TEMPORAL_TASK_QUEUE).changesQueued(scope),
      },
    },
    retention: { pool, evidenceDir: path.join(path.dirname(path.resolve(config.EHR_AUDIT_ANCHOR_PATH)), 'evidence') },
    breakGlass: { pool, alertHookRef: config.EHR_BREAK_GLASS_ALERT_URL },
    // Batch exports: job keys wrapped by the KEK, manifests signed with the audit signing key.
    export: { pool, keyring, kek, signer: purposeKeys.auditSigning, pageSize: 500 },
    // Write-back: outbox changes sent through the same vendor door as every sync.
    writeBack: { pool, keyring, vendors, directory },
    // Conflicts: the vendor's current copy through the door; a resolution's write-back wakes writeBack.
    conflicts: {
      pool,
      keyring,
      vendors,
      directory,
      outbox: lazyOutboxNotifier(temporalClient, config.TEMPORAL_TASK_QUEUE),
      remindAfterSeconds: config.EHR_CONFLICT_REMIND_SECONDS,
      escalateAfterSeconds: config.EHR_CONFLICT_ESCALATE_SECONDS,
      alertHookRef: config.EHR_BREAK_GLASS_ALERT_URL,
    },
    // Reconciliation: write-backs and conflicts it opens wake their workflows through the same Temporal client.
    reconcile: {
      pool,
      keyring,
      vendors,
      directory,
      outbox: lazyOutboxNotifier(temporalClient, config.TEMPORAL_TASK_QUEUE),
      conflicts: lazyConflictNotifier(temporalClient, config.TEMPORAL_TASK_QUEUE),
      pageSize: config.EHR_SYNC_PAGE_SIZE,
    },
    close: async () => {
      await (await temporalClientPromise?.catch(() => undefined))?.connection.close();
      await revocations.close();
      await pool.end();
    },
  };
}
