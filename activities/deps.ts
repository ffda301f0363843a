import type { CredentialDirectory } from '../lib/vendors/credentials.js';
import type { VendorClient } from '../lib/vendors/vendor-client.js';
import type { EndpointQueuePolicy } from '../lib/vendors/endpoint-queues.js';
import type { TenantKeyring } from '../lib/keys/keyring.js';
import type { Pool } from '../lib/store/pool.js';
import type { KeyAdmin } from '../lib/keys/key-admin.js';
import type { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import type { PurposeKeys } from '../lib/keys/purpose-key-store.js';

/** What the key rotation activities administer (activities/key-rotation.ts). */
export interface KeyRotationDeps {
  admin: KeyAdmin;
  kek: KeyHierarchy;
  purposeKeys: Pick<PurposeKeys, 'rotatePayloadKey' | 'forget'>;
  /** Where generated signing keys and webhook secrets are written (EHR_SECRETS_DIR). */
  secretsDir: string;
}
import type { Client } from '@temporalio/client';
import type { AuditAnchor } from '../lib/audit/anchor.js';
import type { AuditSigningKeySource } from '../lib/keys/purpose-keys.js';
import type { SandboxAdmin } from '../lib/vendors/sandbox-registration.js';

/** Everything activities depend on, built by workers/ (the only place real clients are constructed). */
export interface ActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  vendors: VendorClient;
  directory: CredentialDirectory;
  defaultPageSize: number;
  /** Routes page activities of rate-limited vendor endpoints to their own task queue; absent: no routing. */
  endpointQueues?: EndpointQueuePolicy;
  /** Key administration for the rotation workflow; absent: those activities refuse. */
  keys?: KeyRotationDeps;
  /** Breach containment (Temporal client, evidence signer and directory); absent: those activities refuse. */
  containment?: ContainmentDeps;
}

/** What the breach-containment activities need beyond the sync's dependencies. */
export interface ContainmentDeps {
  /** A Temporal client (lazily connected): schedules, running syncs, histories for evidence. */
  temporal(): Promise<Client>;
  signer: AuditSigningKeySource;
  anchor: AuditAnchor;
  /** EHR_AUDIT_CHECKPOINT_WRITER: only the anchor's writer signs a fresh checkpoint for evidence. */
  checkpointWriter: boolean;
  /** Evidence files are written here, 0400 (default: `evidence/` beside the audit anchor). */
  evidenceDir: string;
  secretsDir: string;
  jwksPublicUrl?: string;
  /** A sandbox vendor's admin endpoint for restore (lib/incidents/sandbox-admins.ts). */
  sandboxAdminFor(baseUrl: string): SandboxAdmin | undefined;
}
