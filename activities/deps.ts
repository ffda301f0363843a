/**
 * What each workflow's activities depend on: one set per workflow, every member required. workers/
 * builds each (the only place real clients, pools and keys are constructed) and registers the union.
 */
import type { Client } from '@temporalio/client';
import type { AuditAnchor } from '../lib/audit/anchor.js';
import type { KekProvider } from '../lib/keys/kek-provider.js';
import type { KeyAdmin } from '../lib/keys/key-admin.js';
import type { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import type { TenantKeyring } from '../lib/keys/keyring.js';
import type { PurposeKeys } from '../lib/keys/purpose-key-store.js';
import type { AuditSigningKeySource } from '../lib/keys/purpose-keys.js';
import type { Pool } from '../lib/store/pool.js';
import type { CredentialDirectory } from '../lib/vendors/credentials.js';
import type { EndpointQueuePolicy } from '../lib/vendors/endpoint-queues.js';
import type { SandboxAdmin } from '../lib/vendors/sandbox-registration.js';
import type { VendorClient } from '../lib/vendors/vendor-client.js';
import type { ConflictNotifier, OutboxNotifier } from '../lib/writeback/notifier.js';

/** The nightly sync's activities (workflows/nightly-sync.ts; the webhook delta sync runs it as a child). */
export interface SyncActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  vendors: VendorClient;
  directory: CredentialDirectory;
  defaultPageSize: number;
  /** Routes page activities of rate-limited vendor endpoints to their own task queue. */
  endpointQueues: EndpointQueuePolicy;
}

/** The Bulk Data export's activities (workflows/bulk-export.ts, a child of the nightly sync). */
export interface BulkExportActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  vendors: VendorClient;
  directory: CredentialDirectory;
  /** Lines stored per transaction (and per heartbeat): a resumed download repeats at most one batch. */
  batchSize: number;
  /** Longest NDJSON line accepted; a longer one is reported malformed (by number) and skipped. */
  maxLineBytes: number;
}

/** The key rotation's activities (workflows/key-rotation.ts). */
export interface KeyRotationActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  admin: KeyAdmin;
  kek: KeyHierarchy;
  purposeKeys: Pick<PurposeKeys, 'rotatePayloadKey' | 'forget'>;
  /** Where generated signing keys and webhook secrets are written (EHR_SECRETS_DIR). */
  secretsDir: string;
  /** How long workers cache integration rows, and so the current kid (EHR_CREDENTIAL_CACHE_SECONDS). */
  credentialCacheSeconds: number;
}

/** Breach containment's activities (workflows/breach-containment.ts). */
export interface ContainmentActivityDeps {
  pool: Pool;
  /** Queued vendor writes are replayed through these after recovery. */
  keyring: TenantKeyring;
  vendors: VendorClient;
  /** A Temporal client (lazily connected): schedules, running syncs, histories for evidence. */
  temporal(): Promise<Client>;
  signer: AuditSigningKeySource;
  anchor: AuditAnchor;
  /** EHR_AUDIT_CHECKPOINT_WRITER: only the anchor's writer signs a fresh checkpoint for evidence. */
  checkpointWriter: boolean;
  /** Evidence files are written here, 0400 (default: `evidence/` beside the audit anchor). */
  evidenceDir: string;
  /** Where restore writes fresh signing keys (EHR_SECRETS_DIR). */
  secretsDir: string;
  /** JWKS_PUBLIC_URL when set: sandbox clients are re-registered by our JWKS URL. */
  jwksPublicUrl: string | undefined;
  /** A sandbox vendor's admin endpoint for restore (lib/incidents/sandbox-admins.ts). */
  sandboxAdminFor(baseUrl: string): SandboxAdmin | undefined;
  /** Wakes the writeBack workflows whose changes the incident held, after recovery. */
  outbox: OutboxNotifier;
}

/** Break-glass review's activities (workflows/break-glass-review.ts). */
export interface BreakGlassActivityDeps {
  pool: Pool;
  /** EHR_BREAK_GLASS_ALERT_URL: the alert hook's secret reference, resolved per alert; undefined: log only. */
  alertHookRef: string | undefined;
}

/** The batch export's activities (workflows/export.ts). */
export interface ExportActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  /** Wraps and unwraps export job keys. */
  kek: KekProvider;
  /** Signs manifests: the audit checkpoint signing key. */
  signer: AuditSigningKeySource;
  /** Records read (and heartbeated) per page. */
  pageSize: number;
}

/** The writeBack workflow's activities (workflows/write-back.ts): the outbox, the keys and the vendor door. */
export interface WriteBackActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  vendors: VendorClient;
  directory: CredentialDirectory;
}

/** Conflict resolution's activities (workflows/conflict-resolution.ts). */
export interface ConflictActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  /** The vendor's current copy of a disputed record is read through the one door. */
  vendors: VendorClient;
  directory: CredentialDirectory;
  /** Wakes the integration's writeBack workflow after a resolution queued a change. */
  outbox: OutboxNotifier;
  /** EHR_CONFLICT_REMIND_SECONDS / _ESCALATE_SECONDS. */
  remindAfterSeconds: number;
  escalateAfterSeconds: number;
  /** The operators' alert hook (EHR_BREAK_GLASS_ALERT_URL, a secret reference); undefined: log only. */
  alertHookRef: string | undefined;
}

/** Reconciliation's activities (workflows/reconcile.ts). */
export interface ReconcileActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  vendors: VendorClient;
  directory: CredentialDirectory;
  /** Wakes the integration's writeBack workflow after write-backs are queued. */
  outbox: OutboxNotifier;
  /** Starts an opened conflict's conflictResolution workflow. */
  conflicts: ConflictNotifier;
  /** Resources per search page (and stored records per by-id batch). */
  pageSize: number;
}
