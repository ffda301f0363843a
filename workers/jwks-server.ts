/**
 * Our hosted JWKS (SMART Backend Services prefers a JWKS URL: it allows in-band key rotation).
 * `GET /jwks/<integrationId>.json` answers the integration's successor, current and previous public
 * keys — never retired ones, never private members — with `Cache-Control: public, max-age=<the
 * vendor profile's jwksCacheSeconds, capped>` and a strong ETag. One URL per integration, so a
 * vendor that registers it learns exactly that client's keys and nothing about other tenants.
 * Unknown ids get 404; a revoked or suspended integration publishes an empty set.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { ID_PATTERN } from '../lib/domain.js';
import type { IntegrationSigningKey } from '../lib/keys/signing-key-repository.js';
import { isVendorId } from '../lib/vendors/profiles/types.js';
import { PROFILES } from '../lib/vendors/profiles/index.js';

/** Longest max-age we announce: a retirement (or a revocation's empty set) must reach vendors within it. */
export const MAX_JWKS_CACHE_SECONDS = 3600;
const DEFAULT_CACHE_SECONDS = 300;
const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'key_ops', 'n', 'e', 'crv', 'x', 'y'] as const;

export interface JwksServer {
  /** e.g. http://127.0.0.1:8890 — append `/jwks/<integrationId>.json`. */
  url: string;
  close(): Promise<void>;
}

export function cacheSecondsFor(vendor: string): number {
  const seconds = isVendorId(vendor) ? PROFILES[vendor].auth.jwksCacheSeconds.value : DEFAULT_CACHE_SECONDS;
  return Math.max(0, Math.min(seconds, MAX_JWKS_CACHE_SECONDS));
}

/** Copies only public JWK members: whatever the row holds, no private member can leave. */
function publicOnly(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of PUBLIC_MEMBERS) if (jwk[name] !== undefined) out[name] = jwk[name];
  return out;
}

/**
 * What to publish for an integration (lib/keys/signing-key-repository.ts publishedSigningKeys); undefined:
 * unknown id.
 */
export type PublishedKeys = (
  integrationId: string,
) => Promise<{ vendor: string; keys: IntegrationSigningKey[] } | undefined>;

export async function startJwksServer(opts: {
  published: PublishedKeys;
  listen: string;
  /** The max-age announced for every vendor instead of its profile's (tests that wait caches out). */
  maxAgeSeconds?: number;
}): Promise<JwksServer> {
  const sep = opts.listen.lastIndexOf(':');
  const host = opts.listen.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(opts.listen.slice(sep + 1));
  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.get<{ Params: { file: string } }>('/jwks/:file', async (req, reply) => {
    const m = /^(.+)\.json$/.exec(req.params.file);
    const integrationId = m?.[1];
    if (!integrationId || !ID_PATTERN.test(integrationId)) return reply.code(404).send({ error: 'not_found' });
    const published = await opts.published(integrationId);
    if (!published) return reply.code(404).send({ error: 'not_found' });
    // Retired keys never leave, even if a caller's query returned them.
    const keys = published.keys.filter((k) => k.state !== 'retired');
    const body = JSON.stringify({
      keys: keys.map((k) => publicOnly({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })),
    });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    const maxAge = opts.maxAgeSeconds ?? cacheSecondsFor(published.vendor);
    reply.header('cache-control', `public, max-age=${maxAge}`).header('etag', etag);
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.type('application/jwk-set+json').send(body);
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found' }));

  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${hostForUrl}:${address.port}`, close: () => app.close() };
}
