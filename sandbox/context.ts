/** Shared state of one running sandbox, handed to every route module. */
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import type { FaultQueue } from './faults.js';
import type { SmartAuth } from './smart.js';
import type { RecordStore } from './store.js';

export interface SandboxUrls {
  url: string;
  fhirBaseUrl: string;
  tokenUrl: string;
}

export class SandboxStats {
  served = emptyServed();
  searchRequests = 0;
  readRequests = 0;
  tokenRequests = 0;
  tokensIssued = 0;
  tokenRequestsRejected = 0;
  /** FHIR requests refused because the access token was missing, unknown or expired. */
  rejectedTokens = 0;
  forbidden = 0;
  faultsInjected = 0;

  reset(): void {
    Object.assign(this, new SandboxStats());
  }

  toJSON(): Record<string, unknown> {
    return {
      served: { ...this.served },
      searchRequests: this.searchRequests,
      readRequests: this.readRequests,
      tokenRequests: this.tokenRequests,
      tokensIssued: this.tokensIssued,
      tokenRequestsRejected: this.tokenRequestsRejected,
      rejectedTokens: this.rejectedTokens,
      forbidden: this.forbidden,
      faultsInjected: this.faultsInjected,
    };
  }
}

function emptyServed(): Record<ResourceType, number> {
  return Object.fromEntries(RESOURCE_TYPES.map((type) => [type, 0])) as Record<ResourceType, number>;
}

export interface SandboxContext {
  /** Filled in once the server listens (routes read it per request). */
  urls: SandboxUrls;
  store: RecordStore;
  auth: SmartAuth;
  faults: FaultQueue;
  stats: SandboxStats;
  size: number;
  maxPageSize: number;
  adminToken: string;
  tokenTtlSeconds: number;
}
