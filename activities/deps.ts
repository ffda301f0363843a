import type { CredentialDirectory } from '../lib/vendors/credentials.js';
import type { VendorClient } from '../lib/vendors/vendor-client.js';
import type { EndpointQueuePolicy } from '../lib/vendors/endpoint-queues.js';
import type { TenantKeyring } from '../lib/security/keyring.js';
import type { Pool } from '../lib/store/pool.js';
import type { KeyAdmin } from '../lib/security/key-admin.js';
import type { KeyHierarchy } from '../lib/security/key-hierarchy.js';
import type { PurposeKeys } from '../lib/security/purpose-key-store.js';

/** What the key rotation activities administer (activities/key-rotation.ts). */
export interface KeyRotationDeps {
  admin: KeyAdmin;
  kek: KeyHierarchy;
  purposeKeys: Pick<PurposeKeys, 'rotatePayloadKey' | 'forget'>;
  /** Where generated signing keys and webhook secrets are written (EHR_SECRETS_DIR). */
  secretsDir: string;
}

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
}
