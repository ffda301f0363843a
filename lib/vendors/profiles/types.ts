/**
 * A vendor profile: what we know about one EHR vendor's FHIR API, as data. Every fact carries its
 * source and a confidence (H = the vendor's own documentation, M = a third party, L = unverified), so
 * the integration matrix can say how sure we are, and code that relies on a low-confidence fact can
 * be found. Quirks that data cannot express live in small adapters (./adapters.ts).
 */
export type Confidence = 'H' | 'M' | 'L';

export interface Fact<T> {
  value: T;
  /** Where the fact comes from: a document title or URL, or 'connector default' for our own choice. */
  source: string;
  confidence: Confidence;
}

export const VENDOR_IDS = [
  'epic',
  'oracle-health',
  'athenahealth',
  'meditech',
  'eclinicalworks',
  'nextgen',
  'fhir-server',
  'sandbox',
] as const;
export type VendorId = (typeof VENDOR_IDS)[number];

export function isVendorId(value: string): value is VendorId {
  return (VENDOR_IDS as readonly string[]).includes(value);
}

/** OAuth client authentication at the token endpoint (RFC 7591 names; tls_client_auth is RFC 8705). */
export const TOKEN_AUTH_METHODS = [
  'private_key_jwt',
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
  // No client authentication and no token: an open FHIR server on a network the organisation controls
  // (registration demands TLS or loopback and an explicit acknowledgement; a residual risk in the matrix).
  'none',
] as const;
export type TokenAuthMethod = (typeof TOKEN_AUTH_METHODS)[number];

export type AssertionAlg = 'RS384' | 'ES384';

/**
 * Who the client assertion's `aud` names: the token endpoint URL (SMART) or the issuer identifier (newer IETF
 * rule).
 */
export type AssertionAudience = 'token-endpoint' | 'issuer';

/** A value the vendor needs on every request beyond the token, e.g. athenahealth's practice id. */
export interface ExtraParameter {
  /** Key in the integration's vendor parameters (`integrations add --param practiceId=…`). */
  name: string;
  in: 'header' | 'query';
  /** The header or query parameter name sent to the vendor. */
  key: string;
  required: boolean;
  description: string;
}

export interface RateLimit {
  requests: number;
  perSeconds: number;
  /** What the limit counts against. */
  scope: 'base-url' | 'client' | 'practice';
  /** 'fixed': a 429 blocks the rest of the window (eClinicalWorks); 'sliding': a token bucket. */
  window: 'fixed' | 'sliding';
  /** Whether a 429 carries Retry-After. */
  retryAfter: boolean;
}

export interface BulkSupport {
  supported: boolean;
  /** Bulk Data IG version, e.g. '1.0.1', '2.0.0'. */
  version?: string;
  levels: Array<'system' | 'patient' | 'group'>;
  /** `_since` honoured for incremental exports. */
  incremental: boolean;
  note?: string;
}

/** How the vendor lets a backend client read a population (lib/sync/read-strategy.ts). */
export interface ReadSupport {
  /** The read strategy an integration gets unless it names one. */
  defaultStrategy: 'bulk' | 'patient' | 'search';
  /** Searches of clinical types without `patient=` (system-wide) are allowed. */
  systemSearch: boolean;
  /** `_lastUpdated=gt…` is honoured on searches (incremental REST reads). */
  lastUpdatedSearch: boolean;
  /**
   * Seconds an incremental read reaches back before its checkpoint: a server stamps a transaction's entries
   * with its start time but shows them at commit, so a strict `gt checkpoint` would skip them for good.
   */
  overlapSeconds: number;
  /** The largest `_count` the server honours (null: not published; the connector's default applies). */
  maxPageSize: number | null;
}

export type PushSupport = 'none' | 'subscriptions' | 'webhooks' | 'alpha' | 'hl7v2-middleware';

export interface VendorProfile {
  id: VendorId;
  name: string;
  fhirVersion: Fact<string>;
  auth: {
    /** Client authentication methods the vendor accepts, preferred first. */
    methods: Fact<TokenAuthMethod[]>;
    algorithms: Fact<AssertionAlg[]>;
    assertionAudience: Fact<AssertionAudience>;
    /** How the vendor learns our public keys. */
    jwks: Fact<'hosted-url' | 'registered' | 'either' | 'not-applicable'>;
    /** How long the vendor caches a hosted JWKS (seconds); rotation waits this long before switching kid. */
    jwksCacheSeconds: Fact<number>;
    /** RFC 7009 revocation endpoint published. */
    revocationEndpoint: Fact<boolean>;
    /** Lifetime of a client secret where secrets are used, in days (null: no secret or unknown). */
    secretLifetimeDays: Fact<number | null>;
  };
  tokens: {
    lifetimeSeconds: Fact<number | null>;
    refresh: Fact<'new-assertion' | 'refresh-token' | 'reauthenticate'>;
  };
  scopes: {
    syntax: Fact<'v1' | 'v2'>;
    /** 'resource': per resource type; 'coarse': one scope grants much more than one purpose needs. */
    granularity: Fact<'resource' | 'coarse'>;
  };
  paging: Fact<'next-link' | 'offset'>;
  bulk: Fact<BulkSupport>;
  reads: Fact<ReadSupport>;
  push: Fact<PushSupport>;
  rateLimit: Fact<RateLimit | null>;
  extraParameters: Fact<ExtraParameter[]>;
  /** Whether the vendor lets a customer export an access log per API client. */
  auditExport: Fact<'granular' | 'coarse' | 'none'>;
  sandbox: Fact<'public' | 'by-agreement' | 'none'>;
}
