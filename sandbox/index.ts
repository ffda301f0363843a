/**
 * A simulated EHR vendor speaking real HTTP, real JWTs (SMART Backend Services) and FHIR R4 JSON over
 * synthetic data generated on demand. Used by tests and the demo; imports nothing of the product except
 * lib/domain.ts.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { SecureVersion } from 'node:tls';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { registerAdminRoutes } from './admin-routes.js';
import { registerBulkExportRoutes } from './bulk-export.js';
import { newBulkState } from './bulk-jobs.js';
import { registerBulkStatusRoutes } from './bulk-status.js';
import { SandboxStats, type LedgerEntry, type SandboxContext } from './context.js';

export type { LedgerEntry } from './context.js';
import { FaultQueue, operationOutcome } from './faults.js';
import { FHIR_JSON, registerFhirRoutes, registerLedger } from './fhir-routes.js';
import { PERSONALITIES, isPersonalityId, type PersonalityId, type RateLimitSpec } from './personalities.js';
import { PatientIndex } from './patient-index.js';
import { RateLimiter } from './rate-limit.js';
import { READ_PATHS } from './read-paths.js';
import { registerReadRoutes } from './read-routes.js';
import { newSearchBehaviour } from './search-exec.js';
import { SmartAuth, registerSmartRoutes } from './smart.js';
import { StoreChanges } from './store-changes.js';
import { RecordStore } from './store.js';
import { WriteLedger } from './write-ledger.js';
import { registerWriteRoutes } from './write-routes.js';

export interface SandboxOptions {
  seed?: number;
  size?: number;
  host?: string;
  port?: number;
  /** Default: the personality's token lifetime. */
  tokenTtlSeconds?: number;
  adminToken?: string;
  /** The vendor to impersonate (default 'standard': every auth method, both scope syntaxes, no limit). */
  personality?: PersonalityId;
  /** Replaces the personality's rate limit (null: none), so tests can use small numbers. */
  rateLimit?: RateLimitSpec | null;
  maxPageSize?: number;
  /** Serve HTTPS instead of plain http (URLs become https). */
  tls?: SandboxTlsOptions;
}

export interface SandboxTlsOptions {
  certPem: string;
  keyPem: string;
  /** CA whose client certificates are accepted (required with requireClientCert). */
  caPem?: string;
  /** Mutual TLS: a client without a certificate signed by caPem is refused during the handshake. */
  requireClientCert?: boolean;
  /** Protocol floor; default TLSv1.2. Nothing older can be configured. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface SandboxHandle {
  url: string;
  /** The personality's base path on this server, e.g. http://127.0.0.1:port/api/FHIR/R4 for Epic. */
  fhirBaseUrl: string;
  personality: PersonalityId;
  tokenUrl: string;
  adminToken: string;
  /** Origin of the second listener (Bulk Data files and status URLs "on another host"). */
  otherOrigin: string;
  /** FHIR requests that arrived at or after `sinceMs` (what `GET /admin/ledger` answers, read in process). */
  ledger(sinceMs?: number): LedgerEntry[];
  close(): Promise<void>;
}

function httpsOptions(t: SandboxTlsOptions): Record<string, unknown> {
  const minVersion: SecureVersion = t.minVersion ?? 'TLSv1.2';
  if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3')
    throw new RangeError('sandbox option tls.minVersion must be TLSv1.2 or TLSv1.3');
  if (typeof t.certPem !== 'string' || typeof t.keyPem !== 'string')
    throw new RangeError('sandbox option tls needs certPem and keyPem');
  if (t.requireClientCert && !t.caPem) throw new RangeError('sandbox option tls.requireClientCert needs tls.caPem');
  return {
    cert: t.certPem,
    key: t.keyPem,
    minVersion,
    ...(t.requireClientCert ? { ca: t.caPem, requestCert: true, rejectUnauthorized: true } : {}),
  };
}

function positiveInt(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw new RangeError(`sandbox option ${name} must be an integer >= ${min}`);
  return value;
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<SandboxHandle> {
  const personalityId = opts.personality ?? 'standard';
  if (!isPersonalityId(personalityId))
    throw new RangeError(`sandbox option personality must be one of ${Object.keys(PERSONALITIES).join(', ')}`);
  const personality = PERSONALITIES[personalityId];
  const seed = positiveInt('seed', opts.seed ?? 42, 0);
  const size = positiveInt('size', opts.size ?? 2000, 1);
  const tokenTtlSeconds = positiveInt('tokenTtlSeconds', opts.tokenTtlSeconds ?? personality.tokenTtlSeconds, 1);
  const rateLimit = opts.rateLimit === undefined ? personality.rateLimit : opts.rateLimit;
  if (rateLimit) {
    positiveInt('rateLimit.requests', rateLimit.requests, 1);
    positiveInt('rateLimit.windowMs', rateLimit.windowMs, 1);
  }
  const reads = { ...READ_PATHS[personalityId] };
  const maxPageSize = positiveInt('maxPageSize', opts.maxPageSize ?? reads.maxPageSize, 1);
  const host = opts.host ?? '127.0.0.1';
  const adminToken = opts.adminToken ?? randomBytes(24).toString('base64url');

  const clock = { skewMs: 0 };
  const store = new RecordStore(seed, size);
  const ctx: SandboxContext = {
    urls: { url: '', fhirBaseUrl: '', tokenUrl: '' },
    store,
    // The vendor's clock (skewable through the admin API) judges assertions and token expiry.
    auth: new SmartAuth(() => Date.now() + clock.skewMs),
    faults: new FaultQueue(),
    stats: new SandboxStats(),
    size,
    maxPageSize,
    adminToken,
    tokenTtlSeconds,
    ledger: [],
    personality,
    rateLimiter: new RateLimiter(rateLimit),
    clock,
    disabledClients: new Set(),
    narrowedTypes: new Map(),
    reads,
    changes: new StoreChanges(store),
    patients: new PatientIndex(store),
    searchBehaviour: newSearchBehaviour(),
    bulk: newBulkState(),
  };

  const base = { logger: false, forceCloseConnections: true, bodyLimit: 2 * 1024 * 1024 } as const;
  // Routes are written against the http-typed instance; https changes only the listening server.
  const newApp = (): FastifyInstance =>
    (opts.tls ? Fastify({ ...base, https: httpsOptions(opts.tls) }) : Fastify(base)) as unknown as FastifyInstance;
  const app = newApp();
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    const path = req.url;
    if (path.startsWith('/oauth/')) {
      return reply
        .code(status < 500 ? 400 : 500)
        .header('cache-control', 'no-store')
        .send({
          error: status < 500 ? 'invalid_request' : 'server_error',
          error_description: status < 500 ? 'the token request could not be parsed' : 'internal error',
        });
    }
    if (path.startsWith('/admin/'))
      return reply.code(status).send({ error: status < 500 ? 'invalid_request' : 'server_error' });
    return reply
      .code(status)
      .type(FHIR_JSON)
      .send(
        JSON.stringify(
          operationOutcome(status < 500 ? 'invalid' : 'exception', status < 500 ? 'bad request' : 'internal error'),
        ),
      );
  });
  app.setNotFoundHandler((_req, reply) =>
    reply
      .code(404)
      .type(FHIR_JSON)
      .send(JSON.stringify(operationOutcome('not-found', 'no such endpoint'))),
  );

  registerLedger(app, ctx);
  registerSmartRoutes(app, ctx);
  registerFhirRoutes(app, ctx);
  registerWriteRoutes(app, ctx, new WriteLedger());
  registerAdminRoutes(app, ctx);
  registerReadRoutes(app, ctx);
  registerBulkExportRoutes(app, ctx);
  registerBulkStatusRoutes(app, ctx, 'primary');
  // A second listener on another port (another origin): export files and status URLs "on another host".
  const other = newApp();
  registerBulkStatusRoutes(other, ctx, 'other');

  await app.listen({ host, port: opts.port ?? 0 });
  await other.listen({ host, port: 0 });
  const address = app.server.address() as AddressInfo;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const url = `${opts.tls ? 'https' : 'http'}://${hostForUrl}:${address.port}`;
  ctx.urls.url = url;
  ctx.urls.fhirBaseUrl = `${url}${personality.basePath}`;
  ctx.urls.tokenUrl = `${url}/oauth/token`;
  ctx.bulk.otherOrigin = `${opts.tls ? 'https' : 'http'}://${hostForUrl}:${(other.server.address() as AddressInfo).port}`;

  let closed: Promise<void> | undefined;
  return {
    url,
    fhirBaseUrl: ctx.urls.fhirBaseUrl,
    personality: personality.id,
    tokenUrl: ctx.urls.tokenUrl,
    adminToken,
    ledger: (sinceMs = 0) => ctx.ledger.filter((e) => e.atMs >= sinceMs).map((e) => ({ ...e })),
    otherOrigin: ctx.bulk.otherOrigin,
    close: () => (closed ??= Promise.all([app.close(), other.close()]).then(() => undefined)),
  };
}
