/**
 * How the vendor door reads what comes back and where it may go: a 429's wait from the vendor's
 * profile, the same-origin rule for links we follow, a network failure's reason, the OAuth error of a
 * refused token request (reduced to plain words), and a token response.
 */
import { VendorAuthError, VendorHttpError } from '../errors/index.js';
import { throttleDelayMs } from './profiles/adapters.js';
import { PROFILES } from './profiles/index.js';
import type { VendorProfile } from './profiles/types.js';
import { isVendorId } from './profiles/types.js';

export function profileOf(vendor: string): VendorProfile | undefined {
  return isVendorId(vendor) ? PROFILES[vendor] : undefined;
}

/**
 * A 429's wait comes from the vendor's profile: Retry-After when sent, else (fixed-window vendors such
 * as eClinicalWorks) the start of the next window. It reaches Temporal as nextRetryDelay (lib/errors).
 */
export function withThrottleDelay(err: VendorHttpError, vendor: string): VendorHttpError {
  const profile = profileOf(vendor);
  if (err.status !== 429 || !profile) return err;
  const delay = throttleDelayMs(profile, err.retryAfterMs);
  return delay === err.retryAfterMs
    ? err
    : new VendorHttpError(err.status, err.method, err.path, delay, err.outcomeCode);
}

/**
 * A next link or any URL we are asked to follow must stay on the vendor's origin: our token goes with it.
 * Inside the base URL's path too, unless `anywhereOnOrigin` (Bulk Data status URLs).
 */
export function assertSameOrigin(target: URL, baseUrl: string, anywhereOnOrigin = false): void {
  const base = new URL(baseUrl);
  const basePath = base.pathname.replace(/\/$/, '');
  const inside = anywhereOnOrigin || target.pathname === basePath || target.pathname.startsWith(`${basePath}/`);
  if (target.origin !== base.origin || !inside) {
    throw new VendorAuthError(
      '-',
      `refusing to send credentials to ${target.origin}${target.pathname}: outside the vendor base URL`,
    );
  }
}

export function networkReason(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as { cause?: { code?: string } }).cause;
    return cause?.code ?? err.message;
  }
  return 'unknown';
}

/**
 * The OAuth error code and, when the vendor sends one, its error_description — reduced to plain
 * words and capped, because it is vendor text going into our errors, logs and workflow histories.
 * The description is what tells an operator a disabled client from a replayed jti or a skewed clock.
 */
export function oauthErrorCode(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown; error_description?: unknown };
    const code =
      typeof parsed.error === 'string' ? parsed.error.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64) : 'no error code';
    const description =
      typeof parsed.error_description === 'string'
        ? parsed.error_description
            .replace(/[^A-Za-z0-9 .,:;'()_/-]/g, '')
            .trim()
            .slice(0, 160)
        : '';
    return description ? `${code}: ${description}` : code;
  } catch {
    return 'no error code';
  }
}

export function parseTokenResponse(
  body: Buffer,
): { accessToken: string; expiresInSeconds: number; scope: string } | undefined {
  try {
    const t = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (typeof t.access_token !== 'string' || t.access_token.length === 0) return undefined;
    const expiresIn = typeof t.expires_in === 'number' && t.expires_in > 0 ? t.expires_in : 300;
    return {
      accessToken: t.access_token,
      expiresInSeconds: expiresIn,
      scope: typeof t.scope === 'string' ? t.scope : '',
    };
  } catch {
    return undefined;
  }
}

/**
 * The first issue code of an OperationOutcome body (a FHIR code such as `not-supported`), or undefined. Only
 * the code: diagnostics and details are vendor text that can quote what was asked for.
 */
export function outcomeCodeOf(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { resourceType?: unknown; issue?: unknown };
    if (parsed.resourceType !== 'OperationOutcome' || !Array.isArray(parsed.issue)) return undefined;
    const code = (parsed.issue[0] as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' && /^[a-z][a-z-]{0,63}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}
