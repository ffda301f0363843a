import type { CredentialDirectory } from '../lib/vendors/credentials.js';
import type { VendorClient } from '../lib/vendors/vendor-client.js';
import type { EndpointQueuePolicy } from '../lib/vendors/endpoint-queues.js';
import type { TenantKeyring } from '../lib/security/keyring.js';
import type { Pool } from '../lib/store/pool.js';

/** Everything activities depend on, built by workers/ (the only place real clients are constructed). */
export interface ActivityDeps {
  pool: Pool;
  keyring: TenantKeyring;
  vendors: VendorClient;
  directory: CredentialDirectory;
  defaultPageSize: number;
  /** Routes page activities of rate-limited vendor endpoints to their own task queue; absent: no routing. */
  endpointQueues?: EndpointQueuePolicy;
}
