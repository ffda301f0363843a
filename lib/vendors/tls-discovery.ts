/**
 * SMART discovery for a vendor reached with the integration's own TLS material (a private CA, or a
 * server that demands a client certificate), which global fetch cannot be given. Same rules as
 * ./smart-discovery.ts: no redirects, a timeout, a size cap, and every endpoint it names allowed.
 */
import https from 'node:https';
import { VendorHttpError } from '../errors/index.js';
import { assertTransportAllowed, readBodyCapped } from './http-policy.js';
import type { SmartConfiguration } from './smart-discovery.js';
import { agentOptions, httpsExchange } from './tls-options.js';
import type { VendorTls } from './tls-options.js';

const PATH = '/.well-known/smart-configuration';

export async function discoverSmartConfigurationWith(baseUrl: string, tls: VendorTls, timeoutMs = 10_000): Promise<SmartConfiguration> {
  const url = new URL(`${baseUrl.replace(/\/$/, '')}${PATH}`);
  assertTransportAllowed(url);
  const agent = new https.Agent({ ...agentOptions(tls), keepAlive: false });
  const res = await httpsExchange(url, { method: 'GET', headers: { accept: 'application/json' }, agent, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new VendorHttpError(res.status, 'GET', PATH);
  }
  const config = JSON.parse((await readBodyCapped(res, 256 * 1024, PATH)).toString('utf8')) as Record<string, unknown>;
  return { tokenEndpoint: allowedUrl(config.token_endpoint), revocationEndpoint: allowedUrl(config.revocation_endpoint) };
}

function allowedUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const url = new URL(value);
  assertTransportAllowed(url);
  return url.toString();
}
