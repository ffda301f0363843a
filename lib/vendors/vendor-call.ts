/**
 * What the vendor door works with: an integration's credentials as the worker resolved them, the
 * client's dependencies (credentials, audit sink, revocation gate, circuit breaker), and the context and
 * answer of one call.
 */
import type { AuditEvent } from '../audit/chain.js';
import type { ResourceType } from '../domain.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import type { TokenAuthMethod } from './profiles/types.js';
import type { VendorTls } from './tls-options.js';

export interface IntegrationCredentials {
  tenantId: string;
  integrationId: string;
  vendor: string;
  baseUrl: string;
  tokenUrl: string;
  clientId: string;
  scopes: string[];
  /** The policy's resource types; with them, scopes are written in the vendor profile's syntax. */
  resourceTypes?: readonly ResourceType[];
  /** The types the integration writes back (its write policies): the write token asks for their write scopes. */
  writeTypes?: readonly ResourceType[];
  /** Client authentication at the token endpoint (default private_key_jwt): lib/vendors/client-auth.ts. */
  authMethod?: TokenAuthMethod;
  /** Signs a fresh client assertion (new jti) with `aud` = audience (default: the token endpoint). */
  signAssertion(audience?: string): Promise<string>;
  /** client_secret_basic/post: the secret, resolved from its reference and kept only in memory. */
  clientSecret?(): Promise<string>;
  /** The vendor profile's extra parameters for FHIR requests (practice id, site id …); not secrets. */
  vendorParams?: Record<string, string>;
  /** Resolved TLS material (vendor CA, client certificate for mTLS); absent: system roots, no client cert. */
  tls?: VendorTls;
  /** The credential generation these were loaded for (revoke and restore bump it). */
  generation?: number;
}

export interface VendorClientDeps {
  credentials(integrationId: string): Promise<IntegrationCredentials>;
  audit(event: AuditEvent): Promise<void>;
  timeoutMs: number;
  maxResponseBytes: number;
  actor: string;
  /**
   * Fail-closed revocation gate, awaited immediately before every request (token requests included):
   * throws IntegrationRevokedError for a revoked or suspended integration, else returns its current
   * credential generation (lib/revocation/watcher.ts).
   */
  gate?(integrationId: string): Promise<{ generation: number }>;
  /**
   * Credentials and RFC 7009 revocation endpoint of an integration regardless of its status (used
   * only to revoke its tokens at the vendor); undefined when the vendor publishes no endpoint.
   */
  revocationTarget?(integrationId: string): Promise<{ cred: IntegrationCredentials; endpoint: string } | undefined>;
  /** Circuit breaker per integration (lib/vendors/circuit-breaker.ts); absent: none. */
  breaker?: CircuitBreakers;
}

export interface CallContext {
  correlationId: string;
  /** What the call is for, recorded in the audit event (e.g. 'sync.page'). */
  purpose: string;
}

export interface VendorResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** A vendor write: the Idempotency-Key must be the same on every retry of the same logical write. */
export interface WriteContext extends CallContext {
  /** Derived from something stable across activity retries (workflow id + activity id, or a business key). */
  idempotencyKey: string;
}
