/** Shared state of one running sandbox, handed to every route module. */
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import type { BulkState } from './bulk-jobs.js';
import type { FaultQueue } from './faults.js';
import type { PatientIndex } from './patient-index.js';
import type { Personality } from './personalities.js';
import type { RateLimiter } from './rate-limit.js';
import type { ReadPaths } from './read-paths.js';
import type { SearchBehaviour } from './search-exec.js';
import type { SmartAuth } from './smart.js';
import type { StoreChanges } from './store-changes.js';
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
  /** Access tokens revoked through the RFC 7009 endpoint. */
  tokensRevoked = 0;
  /** FHIR requests answered 429 by the personality's rate limit. */
  rateLimited = 0;
  /** FHIR requests refused 400 for a missing vendor parameter (practice id, site id). */
  missingParameters = 0;

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
      tokensRevoked: this.tokensRevoked,
      rateLimited: this.rateLimited,
      missingParameters: this.missingParameters,
    };
  }
}

function emptyServed(): Record<ResourceType, number> {
  return Object.fromEntries(RESOURCE_TYPES.map((type) => [type, 0])) as Record<ResourceType, number>;
}

/** One FHIR request as it arrived: when, and a hash prefix of its bearer token (never the token). */
export interface LedgerEntry {
  atMs: number;
  /** First 16 hex digits of SHA-256 of the bearer token; '' when the request carried none. */
  tokenHash: string;
  method: string;
  /** The resource type part of the path only (no ids, no query). */
  resource: string;
  /** Filled in when the response is sent. */
  status?: number;
}

export const LEDGER_MAX = 200_000;

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
  /** Every FHIR request's arrival (bounded: the oldest entries are dropped past LEDGER_MAX). */
  ledger: LedgerEntry[];
  /** The vendor the sandbox impersonates (auth methods, scopes, paging, limits, base path). */
  personality: Personality;
  /** The personality's rate limit for this sandbox's one base URL (replaceable through the admin API). */
  rateLimiter: RateLimiter;
  /** Offset of the sandbox's clock from real time, used for assertion validation and token expiry. */
  clock: { skewMs: number };
  /** Clients the vendor has disabled: the token endpoint refuses them with invalid_client. */
  disabledClients: Set<string>;
  /** Resource types a client may still read after the vendor narrowed its scopes (absent: as registered). */
  narrowedTypes: Map<string, ReadonlySet<ResourceType>>;
  /** The personality's read paths (a copy: the admin API can change the page-size maximum). */
  reads: ReadPaths;
  /** Deletions, transactions, ties and history over the store. */
  changes: StoreChanges;
  patients: PatientIndex;
  searchBehaviour: SearchBehaviour;
  bulk: BulkState;
}
