/**
 * The codec server for the Temporal Web UI (and `ehrctl audit history --decode`): POST /decode and
 * POST /encode per the UI's remote codec protocol (`{ payloads: [{ metadata: {k: base64}, data: base64 }] }`,
 * header X-Namespace), over HTTPS only.
 *
 * - CORS by hand: only CODEC_UI_ORIGIN, exactly, with credentials; a request carrying any other
 *   Origin is refused (403, no CORS headers). Requests without Origin (CLI, curl) are not browsers.
 * - Authentication: a bearer JWT, or the session cookie set by POST /login (see codec/auth.ts).
 *   /decode also needs the CODEC_DECODE_ROLE role in the token's `roles` claim.
 * - Every decode writes an audit event `codec.decode` (actor = token sub; details: namespace, payload
 *   count, key ids — never payload content) BEFORE the decoded payloads leave; if the audit write
 *   fails the decode is refused (fail closed). Refusals are audited as failures.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { AuditEvent } from '../lib/audit/chain.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { loadConfig } from '../lib/config/schema.js';
import { exitCodeForError } from '../lib/errors/exit-codes.js';
import { ConfigError, EhrError } from '../lib/errors/index.js';
import type { Logger } from '../lib/log/logger.js';
import { createLogger } from '../lib/log/logger.js';
import { payloadKeyId } from '../lib/security/payload-codec.js';
import { createPool } from '../lib/store/pool.js';
import type { Principal, TokenVerifier } from './codec/auth.js';
import { AuthRefusal, SESSION_COOKIE, createTokenVerifier, readCookie } from './codec/auth.js';
import { openPayloadCodec } from '../lib/security/open-purpose-keys.js';
import { fromWire, toWire } from '../lib/security/codec-wire.js';
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
>;

export interface CodecServerDeps {
  codec: PayloadCodec;
  /** Writes one audit event; must throw when it cannot (the decode is then refused). */
  audit: (event: AuditEvent) => Promise<unknown>;
  logger?: Logger;
  /** PEMs instead of the CODEC_TLS_CERT/KEY references (tests). */
  tls?: { certPem: string; keyPem: string };
  verifier?: TokenVerifier;
}

export interface CodecServerHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Namespace';

async function tlsMaterial(config: CodecServerConfig, deps: CodecServerDeps): Promise<{ cert: string; key: string }> {
  if (deps.tls) return { cert: deps.tls.certPem, key: deps.tls.keyPem };
  if (!config.CODEC_TLS_CERT) throw new ConfigError('CODEC_TLS_CERT', 'is required: the codec server serves HTTPS only (the Web UI sends tokens only to https)');
  if (!config.CODEC_TLS_KEY) throw new ConfigError('CODEC_TLS_KEY', 'is required: the codec server serves HTTPS only');
  return {
    cert: await resolveSecret(config.CODEC_TLS_CERT, { field: 'CODEC_TLS_CERT', shareable: true }),
    key: await resolveSecret(config.CODEC_TLS_KEY, { field: 'CODEC_TLS_KEY' }),
  };
}

function namespaceOf(req: FastifyRequest): string {
  const ns = req.headers['x-namespace'];
  return typeof ns === 'string' && /^[\w.-]{1,200}$/.test(ns) ? ns : 'unspecified';
}

export async function startCodecServer(config: CodecServerConfig, deps: CodecServerDeps): Promise<CodecServerHandle> {
  const verifier = deps.verifier ?? (await createTokenVerifier(config));
  const { cert, key } = await tlsMaterial(config, deps);
  const allowedOrigin = config.CODEC_UI_ORIGIN ? new URL(config.CODEC_UI_ORIGIN).origin : undefined;
  const log = deps.logger;
  const app = Fastify({ https: { cert, key, minVersion: 'TLSv1.2' }, logger: false, bodyLimit: 16 * 1024 * 1024 });

  const refuse = async (req: FastifyRequest, reply: FastifyReply, status: number, reason: string, principal?: { sub?: string }) => {
    if (req.url.startsWith('/decode') || req.url.startsWith('/login')) {
      const action = req.url.startsWith('/decode') ? 'codec.decode' : 'codec.login';
      await deps
        .audit({
          actor: principal?.sub ?? 'anonymous',
          action,
          outcome: 'failure',
          correlationId: randomUUID(),
          details: { namespace: namespaceOf(req), status, reason, origin: typeof req.headers.origin === 'string' ? req.headers.origin.slice(0, 200) : null },
        })
        .catch((err: unknown) => log?.error({ err: { message: (err as Error).message } }, 'could not audit a codec refusal'));
    }
    log?.warn({ status, reason, path: req.url, sub: principal?.sub }, 'codec request refused');
    return reply.code(status).send({ error: status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'refused', reason });
  };

  // CORS, by hand: the configured UI origin only, exactly.
  app.addHook('onRequest', async (req, reply) => {
    reply.header('Vary', 'Origin');
    const origin = req.headers.origin;
    if (origin === undefined || req.url === '/healthz') return;
    if (origin !== allowedOrigin) return refuse(req, reply, 403, 'origin not allowed');
    reply.header('Access-Control-Allow-Origin', origin).header('Access-Control-Allow-Credentials', 'true');
    if (req.method === 'OPTIONS') {
      reply
        .header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
        .header('Access-Control-Allow-Headers', ALLOWED_HEADERS)
        .header('Access-Control-Max-Age', '600');
      return reply.code(204).send();
    }
  });
  app.options('/*', async (_req, reply) => reply.code(204).send());

  const authenticate = async (req: FastifyRequest): Promise<Principal> => {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(auth);
      if (!m) throw new AuthRefusal(401, 'Authorization header must be "Bearer <JWT>"');
      return verifier.verifyBearer(m[1]!);
    }
    const session = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (session) return verifier.verifySession(session);
    throw new AuthRefusal(401, 'no bearer token or session cookie (POST /login with a bearer token to get one)');
  };

  app.get('/healthz', async () => ({ ok: true }));

  app.post('/login', async (req, reply) => {
    let principal: Principal;
    try {
      const bodyToken = (req.body as { token?: unknown } | undefined)?.token;
      principal =
        req.headers.authorization === undefined && typeof bodyToken === 'string'
          ? await verifier.verifyBearer(bodyToken.trim())
          : await authenticate(req);
      if (principal.via !== 'bearer') throw new AuthRefusal(401, 'log in with a bearer token, not a session');
    } catch (err) {
      if (err instanceof AuthRefusal) return refuse(req, reply, err.status, err.reason, { sub: err.sub });
      throw err;
    }
    const session = await verifier.issueSession(principal);
    try {
      await deps.audit({ actor: principal.sub, action: 'codec.login', outcome: 'success', correlationId: randomUUID(), details: { roles: principal.roles, expiresInSeconds: session.maxAge } });
    } catch {
      return reply.code(503).send({ error: 'audit_unavailable', reason: 'the login could not be audited; refused' });
    }
    // Partitioned (CHIPS): browsers that block third-party cookies (Chromium does by default) still keep
    // it, scoped to the top-level site that logged in — the Web UI's page — and send it only from there.
    reply.header('Set-Cookie', `${SESSION_COOKIE}=${session.value}; Path=/; Max-Age=${session.maxAge}; Secure; HttpOnly; SameSite=None; Partitioned`);
    reply.header('Cache-Control', 'no-store');
    return { sub: principal.sub, roles: principal.roles, expiresInSeconds: session.maxAge };
  });

  app.post('/logout', async (_req, reply) => {
    reply.header('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=None; Partitioned`);
    return { ok: true };
  });

  app.post('/encode', async (req, reply) => {
    try {
      await authenticate(req);
    } catch (err) {
      if (err instanceof AuthRefusal) return refuse(req, reply, err.status, err.reason, { sub: err.sub });
      throw err;
    }
    let payloads: Payload[];
    try {
      payloads = fromWire(req.body);
    } catch (err) {
      return reply.code(400).send({ error: 'bad_request', reason: (err as Error).message });
    }
    return toWire(await deps.codec.encode(payloads));
  });

  app.post('/decode', async (req, reply) => {
    let principal: Principal;
    try {
      principal = await authenticate(req);
    } catch (err) {
      if (err instanceof AuthRefusal) return refuse(req, reply, err.status, err.reason, { sub: err.sub });
      throw err;
    }
    if (!principal.roles.includes(config.CODEC_DECODE_ROLE)) {
      return refuse(req, reply, 403, `role ${config.CODEC_DECODE_ROLE} required to decode`, principal);
    }
    let payloads: Payload[];
    try {
      payloads = fromWire(req.body);
    } catch (err) {
      return refuse(req, reply, 400, (err as Error).message, principal);
    }
    const namespace = namespaceOf(req);
    const keyIds = [...new Set(payloads.map(payloadKeyId).filter((k): k is string => k !== undefined))].slice(0, 20);
    let decoded: Payload[];
    try {
      decoded = await deps.codec.decode(payloads);
    } catch (err) {
      const reason = err instanceof EhrError ? err.message : 'payloads could not be decoded';
      return refuse(req, reply, 422, reason, principal);
    }
    try {
      await deps.audit({
        actor: principal.sub,
        action: 'codec.decode',
        outcome: 'success',
        correlationId: randomUUID(),
        details: { namespace, payloadCount: payloads.length, encryptedCount: payloads.filter((p) => payloadKeyId(p) !== undefined).length, keyIds, via: principal.via },
      });
    } catch {
      log?.error({ sub: principal.sub, namespace }, 'decode refused: audit write failed');
      return reply.code(503).send({ error: 'audit_unavailable', reason: 'the decode could not be audited; refused' });
    }
    reply.header('Cache-Control', 'no-store');
    return toWire(decoded);
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
      const codec = await openPayloadCodec(config, { pool, actor: `codec-server:${os.hostname()}:${process.pid}` });
      const server = await startCodecServer(config, { codec, audit: (e) => recordAuditEvent(pool, e), logger });
      const stop = () => {
        void server.close().then(() => pool.end()).then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    })
    .catch((err: unknown) => {
      const message = err instanceof EhrError ? err.message : `unexpected failure: ${(err as Error)?.message ?? String(err)}`;
      process.stderr.write(`codec-server: ${message}\n`);
      void pool.end();
      process.exit(exitCodeForError(err));
    });
}
