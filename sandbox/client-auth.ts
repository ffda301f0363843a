/**
 * How the sandbox identifies and verifies a client at its token and revocation endpoints, like a real
 * vendor: the method registered for the client is the only one accepted; client secrets are kept
 * only as salted hashes; a hosted JWKS (`jwks_uri`) is fetched and cached for its Cache-Control
 * max-age and refetched on an unknown kid at most once per `minRefetchMs`; tls_client_auth (RFC 8705)
 * matches the TLS peer certificate's SHA-256 thumbprint or subject DN.
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { JWK } from 'jose';

export const CLIENT_AUTH_METHODS = [
  'private_key_jwt',
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];
export type AssertionAudienceRule = 'token-endpoint' | 'issuer';

export interface StoredSecret {
  salt: Buffer;
  hash: Buffer;
}

export function hashSecret(secret: string): StoredSecret {
  const salt = randomBytes(16);
  return { salt, hash: scryptSync(secret, salt, 32) };
}

export function secretMatches(stored: StoredSecret, given: string): boolean {
  return timingSafeEqual(scryptSync(given, stored.salt, 32), stored.hash);
}

/** RFC 8705 `x5t#S256`: base64url SHA-256 of the certificate's DER. */
export function certificateThumbprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}

/** A subject as `CN=…,O=…` in the order the certificate lists it. */
export function subjectDn(subject: Record<string, string | string[]> | undefined): string {
  return Object.entries(subject ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((value) => `${k}=${value}`))
    .join(',');
}

/** What a token or revocation request presented to authenticate its client. */
export type PresentedClient =
  | { method: 'private_key_jwt'; assertion: string; clientId: string | undefined }
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string }
  | { method: 'tls_client_auth'; clientId: string };

/** Undefined when nothing (or more than one method) was presented; the caller answers with a fixed error. */
export function presentedClient(
  authorization: string | undefined,
  form: URLSearchParams,
  assertionType: string,
): PresentedClient | 'none' | 'ambiguous' | 'malformed' {
  const found: PresentedClient[] = [];
  const basic = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(authorization ?? '');
  if (authorization !== undefined && !basic) return 'malformed';
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'malformed';
    try {
      found.push({
        method: 'client_secret_basic',
        clientId: formDecode(decoded.slice(0, colon)),
        secret: formDecode(decoded.slice(colon + 1)),
      });
    } catch {
      return 'malformed';
    }
  }
  const clientId = form.get('client_id') ?? undefined;
  if (form.has('client_assertion') || form.has('client_assertion_type')) {
    if (form.get('client_assertion_type') !== assertionType) return 'malformed';
    found.push({ method: 'private_key_jwt', assertion: form.get('client_assertion') ?? '', clientId });
  }
  if (form.has('client_secret')) {
    if (!clientId) return 'malformed';
    found.push({ method: 'client_secret_post', clientId, secret: form.get('client_secret') ?? '' });
  }
  if (found.length === 0 && clientId) found.push({ method: 'tls_client_auth', clientId });
  if (found.length === 0) return 'none';
  return found.length > 1 ? 'ambiguous' : found[0]!;
}

/** application/x-www-form-urlencoded decoding of one component ('+' is a space). */
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

const MAX_JWKS_BYTES = 64 * 1024;
const MAX_CACHE_SECONDS = 24 * 3600;

/** A client's hosted JWKS, cached like a vendor caches it. */
export class RemoteJwks {
  private keys = new Map<string, JWK>();
  private fetchedAtMs = -Infinity;
  private maxAgeMs = 0;
  private inflight: Promise<void> | undefined;
  /** How many times the JWKS was fetched (tests read it through the admin API). */
  fetches = 0;

  constructor(
    readonly url: string,
    private readonly now: () => number,
    private readonly minRefetchMs: number,
  ) {}

  knownKids(): string[] {
    return [...this.keys.keys()];
  }

  async key(kid: string): Promise<JWK | undefined> {
    const age = this.now() - this.fetchedAtMs;
    const stale = age >= this.maxAgeMs;
    const unknownMayRefetch = !this.keys.has(kid) && age >= this.minRefetchMs;
    if (stale || unknownMayRefetch) await this.refresh();
    return this.keys.get(kid);
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.fetchOnce().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async fetchOnce(): Promise<void> {
    this.fetches++;
    this.fetchedAtMs = this.now();
    try {
      const res = await fetch(this.url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) throw new Error('jwks fetch failed');
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error('jwks too large');
      const body = JSON.parse(text) as { keys?: JWK[] };
      const keys = new Map<string, JWK>();
      for (const k of body.keys ?? []) if (typeof k.kid === 'string' && k.d === undefined) keys.set(k.kid, k);
      this.keys = keys;
      const maxAge = /(?:^|,)\s*max-age=(\d+)/i.exec(res.headers.get('cache-control') ?? '');
      this.maxAgeMs = Math.min(maxAge ? Number(maxAge[1]) : 0, MAX_CACHE_SECONDS) * 1000;
    } catch {
      // Keep what we had: a vendor does not drop known keys because our endpoint blipped.
      this.maxAgeMs = this.minRefetchMs;
    }
  }
}
