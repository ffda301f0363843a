/**
 * Vendor quirks that profile data drives: scope syntax, the assertion audience, extra request
 * parameters, how long to wait after a 429, and the request rate to hold per vendor endpoint.
 * Everything here is a pure function of a profile, so it is unit-tested without a vendor.
 */
import type { ResourceType } from '../../domain.js';
import { InvalidArgumentError } from '../../errors/index.js';
import type { VendorProfile } from './types.js';

/** Read/search scopes in the vendor's syntax: v2 `system/Patient.rs`, v1 `system/Patient.read`. */
export function scopesFor(profile: VendorProfile, types: readonly ResourceType[]): string[] {
  const suffix = profile.scopes.syntax.value === 'v2' ? 'rs' : 'read';
  return types.map((t) => `system/${t}.${suffix}`);
}

/**
 * Write scopes in the profile's syntax (v2 `system/T.cud`, v1 `system/T.write`), for the types an integration
 * writes back (a stored write policy allowing create or update: lib/writeback/authority.ts).
 */
export function writeScopesFor(profile: VendorProfile, types: readonly ResourceType[]): string[] {
  const suffix = profile.scopes.syntax.value === 'v2' ? 'cud' : 'write';
  return types.map((t) => `system/${t}.${suffix}`);
}

/** The resource types a granted scope string covers (v1 or v2 syntax, `system/*` wildcards). */
export function typesGranted(scope: string, requested: readonly ResourceType[]): ResourceType[] {
  const granted = new Set(scope.split(/\s+/).filter(Boolean));
  return requested.filter((t) =>
    [...granted].some((s) => {
      const m = /^system\/([A-Za-z*]+)\.(.+)$/.exec(s);
      if (!m || (m[1] !== t && m[1] !== '*')) return false;
      const access = m[2]!;
      return (
        access === 'read' ||
        access === '*' ||
        (/^[cruds]+$/.test(access) && access.includes('r') && access.includes('s'))
      );
    }),
  );
}

/** The client assertion's `aud`: the token endpoint (SMART) or the issuer identifier (newer IETF rule). */
export function assertionAudience(profile: VendorProfile, endpoints: { tokenUrl: string; issuer?: string }): string {
  switch (profile.auth.assertionAudience.value) {
    case 'token-endpoint':
      return endpoints.tokenUrl;
    case 'issuer':
      return endpoints.issuer ?? new URL(endpoints.tokenUrl).origin;
  }
}

/** Required extra parameters the integration has not set (registration refuses them). */
export function missingParameters(profile: VendorProfile, params: Readonly<Record<string, string>>): string[] {
  return profile.extraParameters.value.filter((p) => p.required && !params[p.name]).map((p) => p.name);
}

/** Refuses unknown and missing vendor parameters with a message that lists what the vendor expects. */
export function validateVendorParams(profile: VendorProfile, params: Readonly<Record<string, string>>): void {
  const known = new Set(profile.extraParameters.value.map((p) => p.name));
  const unknown = Object.keys(params).filter((k) => !known.has(k));
  const expected = profile.extraParameters.value.map((p) => `${p.name} (${p.description})`).join('; ') || 'none';
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      '--param',
      `${profile.name} takes no parameter ${unknown.join(', ')}; expected: ${expected}`,
    );
  const missing = missingParameters(profile, params);
  if (missing.length > 0)
    throw new InvalidArgumentError('--param', `${profile.name} needs ${missing.join(', ')}; expected: ${expected}`);
  for (const [k, v] of Object.entries(params)) {
    if (!/^[A-Za-z0-9._:/-]{1,128}$/.test(v))
      throw new InvalidArgumentError('--param', `${k}: use 1-128 letters, digits and . _ : / -`);
  }
}

/** Adds the profile's extra parameters to a FHIR request (not to token requests). */
export function applyExtraParameters(
  profile: VendorProfile,
  url: URL,
  headers: Record<string, string>,
  params: Readonly<Record<string, string>>,
): void {
  for (const p of profile.extraParameters.value) {
    const value = params[p.name];
    if (value === undefined) continue;
    if (p.in === 'header') headers[p.key.toLowerCase()] = value;
    else if (!url.searchParams.has(p.key)) url.searchParams.set(p.key, value);
  }
}

/**
 * How long to wait after a 429. Retry-After wins when the vendor sends one; a fixed-window vendor that
 * sends none (eClinicalWorks) blocks the rest of the window, so wait for the next window boundary
 * plus a little jitter so every waiting activity does not arrive on the same millisecond.
 */
export function throttleDelayMs(
  profile: VendorProfile,
  retryAfterMs: number | undefined,
  nowMs = Date.now(),
  random = Math.random,
): number | undefined {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const limit = profile.rateLimit.value;
  if (!limit || limit.window !== 'fixed') return undefined;
  const windowMs = limit.perSeconds * 1000;
  return windowMs - (nowMs % windowMs) + 250 + Math.floor(random() * 1000);
}

/** Fraction of a published limit we use: headroom for token requests and for the vendor's clock. */
export const RATE_LIMIT_HEADROOM = 0.9;

/** Activities per second to allow per vendor endpoint (Temporal task queue rate limit), or undefined. */
export function activityRatePerSecond(profile: VendorProfile): number | undefined {
  const limit = profile.rateLimit.value;
  if (!limit) return undefined;
  return (limit.requests / limit.perSeconds) * RATE_LIMIT_HEADROOM;
}
