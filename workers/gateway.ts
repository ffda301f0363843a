/**
 * The mediation gateway (issue 12): one door through which the organisation's own systems (consumers) read the
 * encrypted store. It is their SMART Backend Services authorization server and their FHIR endpoint:
 *   GET  /.well-known/smart-configuration (also under /fhir/) and /fhir/metadata — discovery, no token needed;
 *   POST /auth/token — client_credentials with a private_key_jwt assertion (lib/gateway/auth/token-endpoint.ts);
 *   ANY  /fhir/<path> — bearer token checked per request (lib/gateway/auth/request-auth.ts: signature, audience,
 *        expiry, consumer still active, rate limit, incident freeze, break-glass grants), then handed with the
 *        GatewayAccess it builds to handleFhirRead (GET, HEAD: lib/gateway/fhir/handler.ts) or handleFhirWrite
 *        (POST, PUT, PATCH, DELETE: lib/gateway/fhir/write-handler.ts, the body as text; its notifier wakes the
 *        writeBack workflow, workers/gateway-temporal.ts);
 *   POST /break-glass — a consumer asks for break-glass itself, same token checks (workers/gateway-break-glass.ts).
 * Every refusal is audited (lib/gateway/auth/refusals.ts) and answered without detail: OAuth errors at the token
 * endpoint, a generic OperationOutcome under /fhir/. HTTPS with GATEWAY_TLS_CERT/KEY (the dev stack gives it a
 * certificate from its dev CA, like the codec server); plain HTTP without them, for a TLS-terminating ingress.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify from 'fastify';
import type { FastifyReply } from 'fastify';
import type { AuditContext } from '../lib/audit/chain.js';
import { RefusalAuditLimiter } from '../lib/audit/refusal-limiter.js';
import type { Config } from '../lib/config/schema.js';
import { EhrError, GatewayRefusalError } from '../lib/errors/index.js';
import type { BreakGlassGrant } from '../lib/gateway/access.js';
import type { BreakGlassEndpointDeps } from '../lib/gateway/break-glass-endpoint.js';
import type { GatewaySigningKey } from '../lib/gateway/auth/access-tokens.js';
import { AccessTokens, loadGatewaySigningKey } from '../lib/gateway/auth/access-tokens.js';
import { ConsumerRateLimiter } from '../lib/gateway/auth/rate-limit.js';
import { gatewayTlsFromConfig } from '../lib/gateway/auth/tls-config.js';
import type { GatewayRoute } from '../lib/gateway/auth/refusals.js';
import { auditGatewayRefusal, operationOutcome } from '../lib/gateway/auth/refusals.js';
import { authorizeRequest } from '../lib/gateway/auth/request-auth.js';
import { ConsumerKeySets, TokenEndpoint, claimedConsumerId } from '../lib/gateway/auth/token-endpoint.js';
import { smartConfiguration } from '../lib/gateway/auth/discovery.js';
import { activeGrantsFor } from '../lib/gateway/break-glass.js';
import { capabilityStatement } from '../lib/gateway/fhir/capability.js';
import { handleFhirRead } from '../lib/gateway/fhir/handler.js';
import { preloadFhirDefinitions } from '../lib/gateway/fhir/validate.js';
import { handleFhirWrite } from '../lib/gateway/fhir/write-handler.js';
import { createKekProvider } from '../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../lib/keys/keyring.js';
import type { Logger } from '../lib/log/logger.js';
import type { Pool } from '../lib/store/pool.js';
import type { OutboxNotifier } from '../lib/writeback/notifier.js';
import { assertDatabaseReachable, createPool, describeDatabaseUrl } from '../lib/store/pool.js';
import { breakGlassRequests, registerBreakGlassRoute } from './gateway-break-glass.js';
import { registerFhirRoute } from './gateway-fhir-route.js';
import { openGatewayTemporal } from './gateway-temporal.js';
import { temporalOutboxNotifier } from './outbox-notifier.js';
import { runServiceMain } from './service-main.js';

export type GatewayConfig = Pick<
  Config,
  'GATEWAY_HOST' | 'GATEWAY_PORT' | 'GATEWAY_PUBLIC_URL' | 'GATEWAY_ACCESS_LIFETIME_SECONDS'
>;

export type FhirHandler = typeof handleFhirRead;
export type FhirWriteHandler = typeof handleFhirWrite;

export interface GatewayDeps {
  pool: Pool;
  keyring: TenantKeyring;
  signingKey: GatewaySigningKey;
  /** PEMs for HTTPS; plain HTTP without. */
  tls?: { certPem: string; keyPem: string };
  /** The consumer's break-glass grants (the breakglass side implements it). */
  grantsFor?: (consumerId: string) => Promise<BreakGlassGrant[]>;
  /** POST /break-glass (records the grant, starts its review); without it the route is not offered. */
  breakGlass?: BreakGlassEndpointDeps;
  /** The FHIR read side; lib/gateway/fhir/handler.ts unless a test gives another. */
  handleFhir?: FhirHandler;
  /** The FHIR write side; lib/gateway/fhir/write-handler.ts unless a test gives another. */
  handleFhirWrite?: FhirWriteHandler;
  /** Wakes an integration's writeBack workflow after a local change is stored; without it the change just waits. */
  outboxNotifier?: OutboxNotifier;
  logger?: Logger;
  actor?: string;
  /** Audit at most one identical refusal per this many ms (default 60 s; see refusals.ts). */
  refusalAuditWindowMs?: number;
  now?: () => number;
}

export interface GatewayHandle {
  /** The public URL (GATEWAY_PUBLIC_URL, or where it listens). */
  url: string;
  tokenUrl: string;
  fhirBaseUrl: string;
  close(): Promise<void>;
}

const BODY_LIMIT = 32 * 1024;
const GENERIC: Record<number, string> = {
  400: 'bad request',
  401: 'authentication required',
  403: 'access denied',
  429: 'too many requests',
  503: 'temporarily unavailable',
};
/** Fixed descriptions per OAuth error: never the cause. */
const OAUTH_DESCRIPTIONS: Record<string, string> = {
  invalid_request: 'the request is malformed',
  invalid_client: 'client authentication failed',
  invalid_scope: 'the requested scope is not available to this client',
  unsupported_grant_type: 'only client_credentials is supported',
};

function parseForm(body: string): Record<string, string> {
  const params = new URLSearchParams(body);
  const form: Record<string, string> = {};
  for (const [k, v] of params) {
    // RFC 6749 §3.2: parameters must not be included more than once.
    if (Object.hasOwn(form, k)) throw new GatewayRefusalError(400, 'invalid_request', 'duplicate-parameter');
    form[k] = v;
  }
  return form;
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps): Promise<GatewayHandle> {
  const { pool, logger: log } = deps;
  const actor = deps.actor ?? `gateway:${os.hostname()}:${process.pid}`;
  const limiter = new RefusalAuditLimiter(deps.refusalAuditWindowMs);
  const rateLimiter = new ConsumerRateLimiter(deps.now);
  const keySets = new ConsumerKeySets();
  const handleFhir = deps.handleFhir ?? handleFhirRead;
  const handleWrite = deps.handleFhirWrite ?? handleFhirWrite;
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    forceCloseConnections: true,
    ...(deps.tls ? { https: { cert: deps.tls.certPem, key: deps.tls.keyPem, minVersion: 'TLSv1.2' as const } } : {}),
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );
  // Set once the listener's address is known (routes are registered before it).
  const at: { url: string; tokens?: AccessTokens; endpoint?: TokenEndpoint } = { url: '' };

  const audit = async (route: GatewayRoute, err: GatewayRefusalError, ctx: AuditContext, claimed?: string) => {
    try {
      if (await auditGatewayRefusal(pool, limiter, route, err, ctx, claimed))
        log?.warn({ route, status: err.status, reason: err.reason, consumerId: err.consumerId }, 'gateway refused');
    } catch (e) {
      log?.error({ err: { message: (e as Error).message }, reason: err.reason }, 'could not audit a gateway refusal');
    }
  };

  const refuse = (route: GatewayRoute) => async (reply: FastifyReply, err: GatewayRefusalError, ctx: AuditContext) => {
    await audit(route, err, ctx);
    if (err.status === 401) reply.header('www-authenticate', `Bearer realm="${at.url}/fhir", error="invalid_token"`);
    if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
    // A 400 (POST /break-glass only) names the field in its code; the caller has proven who it is.
    const reasonCode = [400, 429, 503].includes(err.status) ? err.reason : undefined;
    return reply
      .code(err.status)
      .header('x-correlation-id', ctx.correlationId)
      .type('application/fhir+json')
      .send(operationOutcome(err.status, GENERIC[err.status] ?? 'request refused', reasonCode));
  };

  app.get('/healthz', async () => ({ ok: true }));
  const discovery = async (_req: unknown, reply: FastifyReply) =>
    reply.header('cache-control', 'public, max-age=300').send(smartConfiguration(at.url));
  app.get('/.well-known/smart-configuration', discovery);
  app.get('/fhir/.well-known/smart-configuration', discovery);
  // What the server supports, as FHIR clients ask before they authenticate (it names the token endpoint).
  app.get('/fhir/metadata', async (_req, reply) =>
    reply
      .type('application/fhir+json')
      .header('cache-control', 'public, max-age=300')
      .send(capabilityStatement({ baseUrl: `${at.url}/fhir`, tokenUrl: `${at.url}/auth/token` })),
  );

  app.post('/auth/token', async (req, reply) => {
    const ctx = { actor, correlationId: randomUUID() };
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    let form: Record<string, string> = {};
    try {
      if (typeof req.body !== 'string') throw new GatewayRefusalError(400, 'invalid_request', 'not-a-form');
      form = parseForm(req.body);
      return reply.send(await at.endpoint!.exchange(form, ctx));
    } catch (err) {
      if (!(err instanceof GatewayRefusalError)) throw err;
      await audit('token', err, ctx, claimedConsumerId(form));
      return reply
        .code(err.status)
        .send({ error: err.oauthError, error_description: OAUTH_DESCRIPTIONS[err.oauthError] ?? 'request refused' });
    }
  });

  const authorize = (authorization: string | undefined, correlationId: string) =>
    authorizeRequest(
      { pool, tokens: at.tokens!, rateLimiter, grantsFor: deps.grantsFor, now: deps.now },
      authorization,
      correlationId,
    );
  if (deps.breakGlass)
    await registerBreakGlassRoute(app, {
      actor,
      breakGlass: deps.breakGlass,
      authorize,
      refuse: refuse('break-glass'),
      ...(log ? { logger: log } : {}),
    });

  await registerFhirRoute(app, {
    authorize,
    refuse: refuse('fhir'),
    read: (access, request) => handleFhir({ pool, keyring: deps.keyring }, access, request),
    write: (access, request) =>
      handleWrite(
        {
          pool,
          keyring: deps.keyring,
          ...(deps.outboxNotifier ? { notifier: deps.outboxNotifier } : {}),
          ...(log ? { logger: log } : {}),
        },
        access,
        request,
      ),
    actor,
    baseUrl: () => `${at.url}/fhir`,
  });

  app.setNotFoundHandler((_req, reply) =>
    reply.code(404).type('application/fhir+json').send(operationOutcome(404, 'unknown route')),
  );
  app.setErrorHandler(async (err: { statusCode?: number }, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? 400 : 500;
    if (status === 500)
      log?.error({ err: { message: err instanceof EhrError ? err.message : 'unexpected failure' } }, 'gateway failed');
    return reply.code(status).type('application/fhir+json').send(operationOutcome(status, 'request failed'));
  });

  await app.listen({ host: config.GATEWAY_HOST, port: config.GATEWAY_PORT });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.GATEWAY_PORT;
  const host = config.GATEWAY_HOST.includes(':') ? `[${config.GATEWAY_HOST}]` : config.GATEWAY_HOST;
  at.url =
    config.GATEWAY_PUBLIC_URL ??
    `${deps.tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  at.tokens = new AccessTokens(deps.signingKey, at.url, config.GATEWAY_ACCESS_LIFETIME_SECONDS, deps.now);
  at.endpoint = new TokenEndpoint({
    pool,
    tokens: at.tokens,
    tokenUrl: `${at.url}/auth/token`,
    keySets,
    now: deps.now,
  });
  log?.info({ url: at.url, tls: deps.tls !== undefined }, 'gateway listening');
  return { url: at.url, tokenUrl: `${at.url}/auth/token`, fhirBaseUrl: `${at.url}/fhir`, close: () => app.close() };
}

/** The process: its own pool, the tenant keyring (for the read side), the signing key and TLS from config. */
export async function runGateway(
  config: Config,
  logger: Logger,
): Promise<{ handle: GatewayHandle; stop(): Promise<void> }> {
  const pool = createPool(config.DATABASE_URL, 10);
  let temporal: Awaited<ReturnType<typeof openGatewayTemporal>> | undefined;
  try {
    await assertDatabaseReachable(pool, describeDatabaseUrl(config.DATABASE_URL));
    const actor = `gateway:${os.hostname()}:${process.pid}`;
    const signingKey = await loadGatewaySigningKey(config.GATEWAY_ACCESS_SIGNING_KEY);
    const tls = await gatewayTlsFromConfig(config);
    const kek = await KeyHierarchy.open({
      pool,
      backend: await createKekProvider(config),
      audit: { actor, correlationId: `gateway-start:${randomUUID()}` },
    });
    const keyring = new TenantKeyring({ pool, kek });
    // Break-glass grants (lib/gateway/break-glass.ts) are read per request: a grant or its revocation counts at once.
    const grantsFor = (consumerId: string) => activeGrantsFor(pool, consumerId);
    temporal = await openGatewayTemporal(config, { pool, actor, kek });
    // The R4 definitions the write validator uses, indexed before the first request rather than during it.
    preloadFhirDefinitions();
    const handle = await startGateway(config, {
      pool,
      keyring,
      signingKey,
      grantsFor,
      breakGlass: breakGlassRequests(config, { pool, temporal: temporal.client }),
      outboxNotifier: temporalOutboxNotifier(temporal.client, config.TEMPORAL_TASK_QUEUE),
      ...(tls ? { tls } : {}),
      logger,
      actor,
    });
    return {
      handle,
      stop: async () => {
        await handle.close();
        await temporal?.close();
        await pool.end();
      },
    };
  } catch (err) {
    await temporal?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    throw err;
  }
}

if (require.main === module) runServiceMain('gateway', runGateway);
