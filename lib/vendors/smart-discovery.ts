/**
 * SMART discovery: `[base]/.well-known/smart-configuration`. Public metadata, fetched without a
 * credential, so it does not go through the authenticated vendor wrapper, but it obeys the same
 * transport rules: TLS except loopback, no redirects, a timeout and a size cap, and every endpoint it
 * names must itself be allowed. A vendor reached with the integration's own TLS material (a private CA,
 * or a server that demands a client certificate) is asked through an agent built from it, which global
 * fetch cannot be given.
 */
import https from 'node:https';
import { VendorHttpError } from '../errors/index.js';
import { assertTransportAllowed, readBodyCapped } from './http-policy.js';
import { agentOptions, httpsExchange } from './tls-options.js';
import type { VendorTls } from './tls-options.js';

const PATH = '/.well-known/smart-configuration';
const MAX_BYTES = 256 * 1024;

export interface SmartConfiguration {
  tokenEndpoint?: string;
  revocationEndpoint?: string;
  /** `scopes_supported` when the server lists it (strings only); lib/vendors/advertised-scopes.ts reads it. */
  scopesSupported?: string[];
}

export async function discoverSmartConfiguration(
  baseUrl: string,
  timeoutMs = 10_000,
  tls?: VendorTls,
): Promise<SmartConfiguration> {
  const url = new URL(`${baseUrl.replace(/\/$/, '')}${PATH}`);
  assertTransportAllowed(url);
  const signal = AbortSignal.timeout(timeoutMs);
  const headers = { accept: 'application/json' };
  const res =
    tls && url.protocol === 'https:'
      ? await httpsExchange(url, {
          method: 'GET',
          headers,
          agent: new https.Agent({ ...agentOptions(tls), keepAlive: false }),
          signal,
        })
      : await fetch(url, { headers, redirect: 'error', signal });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new VendorHttpError(res.status, 'GET', PATH);
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse((await readBodyCapped(res, MAX_BYTES, PATH)).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof SyntaxError) return {};
    throw err;
  }
  const scopes = config.scopes_supported;
  return {
    tokenEndpoint: allowedUrl(config.token_endpoint),
    revocationEndpoint: allowedUrl(config.revocation_endpoint),
    ...(Array.isArray(scopes) ? { scopesSupported: scopes.filter((s): s is string => typeof s === 'string') } : {}),
  };
}

function allowedUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const url = new URL(value);
  assertTransportAllowed(url);
  return url.toString();
}
