/**
 * The codec server for the Temporal Web UI (and `ehrctl audit history --decode`): POST /decode and
 * POST /encode per the UI's remote codec protocol (`{ payloads: [{ metadata: {k: base64}, data: base64 }] }`,
 * header X-Namespace), over HTTPS only.
 *
 * - CORS by hand: only CODEC_UI_ORIGIN, exactly, with credentials; a request carrying any other
 *   Origin is refused (403, no CORS headers). Requests without Origin (CLI, curl) are not browsers.
 * - Authentication: a bearer JWT, or the session cookie set by POST /login (see codec/auth.ts).
 *   /decode needs the CODEC_DECODE_ROLE role in the token's `roles` claim, /encode CODEC_ENCODE_ROLE.
 *   Both are checked before the body is read: until then a request may send at most
 *   PRE_AUTH_BODY_LIMIT bytes (the /login token), and a refused one is not read at all.
 * - Every decode and encode writes an audit event (actor = token sub; details: namespace, payload
 *   count, key ids — never payload content) BEFORE the payloads leave; if the audit write fails the
 *   request is refused (fail closed). Refusals are audited by route (codec/refusals.ts). The payload
 *   routes themselves are codec/payload-routes.ts.
 * - Security headers on every answer (codec/security-headers.ts).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PayloadCodec } from '@temporalio/common';
import type { AuditEvent } from '../lib/audit/chain.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { loadConfig } from '../lib/config/schema.js';
import { exitCodeForError } from '../lib/errors/exit-codes.js';
import { ConfigError, EhrError } from '../lib/errors/index.js';
import type { Logger } from '../lib/log/logger.js';
import { createLogger } from '../lib/log/logger.js';
import { createPool } from '../lib/store/pool.js';
import type { Principal, TokenVerifier } from './codec/auth.js';
import {
  AuthRefusal,
  SESSION_COOKIE,
  authenticateRequest,
  createTokenVerifier,
  offersCredentials,
} from './codec/auth.js';
import type { ConflictDiffSource } from './codec/conflict-routes.js';
import { registerConflictRoutes } from './codec/conflict-routes.js';
import { registerPayloadRoutes } from './codec/payload-routes.js';
import { createRefuser, frameworkReason, matchedRoute } from './codec/refusals.js';
import { securityHeaders } from './codec/security-headers.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import { createKekProvider } from '../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../lib/keys/keyring.js';
import { conflictDiff } from '../lib/writeback/conflicts.js';
import { resolveSecret } from '../lib/config/secrets.js';

export type CodecServerConfig = Pick<
  Config,
  | 'CODEC_HOST'
  | 'CODEC_PORT'
  | 'CODEC_UI_ORIGIN'
  | 'CODEC_TLS_CERT'
  | 'CODEC_TLS_KEY'
  | 'CODEC_AUTH_JWKS_URL'
  | 'CODEC_AUTH_ISSUER_KEY'
  | 'CODEC_AUTH_ISSUER'
  | 'CODEC_AUTH_AUDIENCE'
  | 'CODEC_DECODE_ROLE'
  | 'CODEC_ENCODE_ROLE'
>;

export interface CodecServerDeps {
  codec: PayloadCodec;
  /** Writes one audit event; must throw when it cannot (the decode is then refused). */
  audit: (event: AuditEvent) => Promise<unknown>;
  logger?: Logger;
  /** PEMs instead of the CODEC_TLS_CERT/KEY references (tests). */
  tls?: { certPem: string; keyPem: string };
  verifier?: TokenVerifier;
  /** GET /conflicts/:id (a reconciliation conflict's decoded diff); without it the route does not exist. */
  conflicts?: ConflictDiffSource;
  /** Audit at most one refusal of an unidentified caller per action, status and reason per this many ms (60 s). */
  anonymousRefusalWindowMs?: number;
}

export interface CodecServerHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Namespace';
/** The most a request may send before its caller is authorised: a /login body holding one token. */
export const PRE_AUTH_BODY_LIMIT = 8 * 1024;
// Callers read the payload limit here, as before the payload routes got a file of their own.
export { PAYLOAD_BODY_LIMIT } from './codec/payload-routes.js';

async function tlsMaterial(config: CodecServerConfig, deps: CodecServerDeps): Promise<{ cert: string; key: string }> {
  if (deps.tls) return { cert: deps.tls.certPem, key: deps.tls.keyPem };
  if (!config.CODEC_TLS_CERT)
    throw new ConfigError(
      'CODEC_TLS_CERT',
      'is required: the codec server serves HTTPS only (the Web UI sends tokens only to https)',
    );
  if (!config.CODEC_TLS_KEY) throw new ConfigError('CODEC_TLS_KEY', 'is required: the codec server serves HTTPS only');
  return {
    cert: await resolveSecret(config.CODEC_TLS_CERT, { field: 'CODEC_TLS_CERT', shareable: true }),
    key: await resolveSecret(config.CODEC_TLS_KEY, { field: 'CODEC_TLS_KEY' }),
  };
}

export async function startCodecServer(config: CodecServerConfig, deps: CodecServerDeps): Promise<CodecServerHandle> {
  const verifier = deps.verifier ?? (await createTokenVerifier(config));
  const { cert, key } = await tlsMaterial(config, deps);
  const allowedOrigin = config.CODEC_UI_ORIGIN ? new URL(config.CODEC_UI_ORIGIN).origin : undefined;
  const log = deps.logger;
  const app = Fastify({ https: { cert, key, minVersion: 'TLSv1.2' }, logger: false, bodyLimit: PRE_AUTH_BODY_LIMIT });
  // JSON only: text/plain is a CORS "simple" type a page on any origin may send without a preflight.
  app.removeContentTypeParser('text/plain');
  const refuse = createRefuser({
    audit: deps.audit,
    logger: log,
    anonymousWindowMs: deps.anonymousRefusalWindowMs,
    drainUpTo: PRE_AUTH_BODY_LIMIT,
  });
  /** The caller each authorised request was admitted as (set before its body is read). */
  const principals = new WeakMap<FastifyRequest, Principal>();

  app.addHook('onSend', async (req, reply) => {
    reply.headers(securityHeaders(req.headers.host));
  });

  // CORS, by hand: the configured UI origin only, exactly. Then unknown routes, before any body is read.
  app.addHook('onRequest', async (req, reply) => {
    reply.header('Vary', 'Origin');
    const origin = req.headers.origin;
    if (origin !== undefined && matchedRoute(req) !== '/healthz') {
      if (origin !== allowedOrigin) return refuse(req, reply, 403, 'origin not allowed', await verifiedCaller(req));
      reply.header('Access-Control-Allow-Origin', origin).header('Access-Control-Allow-Credentials', 'true');
    }
    if (req.is404) return refuse(req, reply, 404, 'no such route', await verifiedCaller(req));
    if (origin !== undefined && req.method === 'OPTIONS') {
      reply
        .header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
        .header('Access-Control-Allow-Headers', ALLOWED_HEADERS)
        .header('Access-Control-Max-Age', '600');
      return reply.code(204).send();
    }
  });
  app.options('/*', async (_req, reply) => reply.code(204).send());

  /** Who a refused request came from, when its credentials verify (for the audit row's actor). */
  async function verifiedCaller(req: FastifyRequest): Promise<{ sub?: string } | undefined> {
    if (!offersCredentials(req.headers)) return undefined;
    return authenticateRequest(verifier, req.headers).then(
      (p) => ({ sub: p.sub }),
      (err: unknown) => (err instanceof AuthRefusal && err.sub !== undefined ? { sub: err.sub } : undefined),
    );
  }

  /** Route-level onRequest: authenticate and authorise before the body is read. */
  const requireRole = (role: string, verb: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    let principal: Principal;
    try {
      principal = await authenticateRequest(verifier, req.headers);
    } catch (err) {
      if (err instanceof AuthRefusal) return refuse(req, reply, err.status, err.reason, { sub: err.sub });
      throw err;
    }
    if (!principal.roles.includes(role)) return refuse(req, reply, 403, `role ${role} required to ${verb}`, principal);
    principals.set(req, principal);
  };
  const admitted = (req: FastifyRequest): Principal => {
    const principal = principals.get(req);
    if (!principal) throw new Error('route reached without an authorised caller');
    return principal;
  };

  app.setErrorHandler(async (err: { code?: string; statusCode?: number; message?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const reason = frameworkReason(err, req.routeOptions.bodyLimit ?? PRE_AUTH_BODY_LIMIT);
      return refuse(req, reply, status, reason, principals.get(req));
    }
    const message = err instanceof EhrError ? err.message : 'unexpected failure';
    log?.error({ err: { code: err.code, message } }, 'codec request failed');
    return reply.code(500).send({ error: 'internal', reason: 'unexpected failure' });
  });

  app.get('/healthz', async () => ({ ok: true }));

  app.post('/login', async (req, reply) => {
    let principal: Principal;
    try {
      const bodyToken = (req.body as { token?: unknown } | undefined)?.token;
      principal =
        req.headers.authorization === undefined && typeof bodyToken === 'string'
          ? await verifier.verifyBearer(bodyToken.trim())
          : await authenticateRequest(verifier, req.headers);
      if (principal.via !== 'bearer') throw new AuthRefusal(401, 'log in with a bearer token, not a session');
    } catch (err) {
      if (err instanceof AuthRefusal) return refuse(req, reply, err.status, err.reason, { sub: err.sub });
      throw err;
    }
    const session = await verifier.issueSession(principal);
    try {
      await deps.audit({
        actor: principal.sub,
        action: 'codec.login',
        outcome: 'success',
        correlationId: randomUUID(),
        details: { roles: principal.roles, expiresInSeconds: session.maxAge },
      });
    } catch {
      return reply.code(503).send({ error: 'audit_unavailable', reason: 'the login could not be audited; refused' });
    }
    // Partitioned (CHIPS): browsers that block third-party cookies (Chromium does by default) still keep
    // it, scoped to the top-level site that logged in — the Web UI's page — and send it only from there.
    reply.header(
      'Set-Cookie',
      `${SESSION_COOKIE}=${session.value}; Path=/; Max-Age=${session.maxAge}; Secure; HttpOnly; ` +
        `SameSite=None; Partitioned`,
    );
    return { sub: principal.sub, roles: principal.roles, expiresInSeconds: session.maxAge };
  });

  app.post('/logout', async (_req, reply) => {
    reply.header('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=None; Partitioned`);
    return { ok: true };
  });

  registerPayloadRoutes(app, {
    codec: deps.codec,
    audit: deps.audit,
    log,
    refuse,
    admitted,
    encodeGuard: requireRole(config.CODEC_ENCODE_ROLE, 'encode'),
    decodeGuard: requireRole(config.CODEC_DECODE_ROLE, 'decode'),
  });
  if (deps.conflicts)
    registerConflictRoutes(app, {
      conflicts: deps.conflicts,
      audit: deps.audit,
      log,
      refuse,
      admitted,
      decodeGuard: requireRole(config.CODEC_DECODE_ROLE, 'decode'),
    });

  await app.listen({ host: config.CODEC_HOST, port: config.CODEC_PORT });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.CODEC_PORT;
  const host = config.CODEC_HOST.includes(':') ? `[${config.CODEC_HOST}]` : config.CODEC_HOST;
  const url = `https://${host}:${port}`;
  log?.info({ url, uiOrigin: allowedOrigin ?? null }, 'codec server listening');
  return { url, port, close: () => app.close() };
}

if (require.main === module) {
  const config = loadConfig();
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'codec-server' });
  const pool = createPool(config.DATABASE_URL, 4);
  Promise.resolve()
    .then(async () => {
      const actor = `codec-server:${os.hostname()}:${process.pid}`;
      // Conflicts' diffs are decrypted with the tenant keyring, under the same KEK hierarchy as the payload codec.
      const kek = await KeyHierarchy.open({
        pool,
        backend: await createKekProvider(config),
        audit: { actor, correlationId: randomUUID() },
      });
      const codec = await openPayloadCodec(config, { pool, kek, actor });
      const keyring = new TenantKeyring({ pool, kek });
      const conflicts = { diff: (id: string) => conflictDiff(pool, keyring, id) };
      const server = await startCodecServer(config, {
        codec,
        audit: (e) => recordAuditEvent(pool, e),
        logger,
        conflicts,
      });
      const stop = () => {
        void server
          .close()
          .then(() => pool.end())
          .then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    })
    .catch((err: unknown) => {
      const message =
        err instanceof EhrError ? err.message : `unexpected failure: ${(err as Error)?.message ?? String(err)}`;
      process.stderr.write(`codec-server: ${message}\n`);
      void pool.end();
      process.exit(exitCodeForError(err));
    });
}
