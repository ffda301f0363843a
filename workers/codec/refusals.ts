/**
 * Every codec-server refusal is answered and audited here, named by the ROUTE the router matched — not
 * by the raw URL, which has many spellings of one route (`/%64ecode` is `/decode` to the router).
 * Unknown routes are audited when they carry credentials (someone with a token probing is worth a
 * row; a scanner without one is noise). Refusals of a verified caller (a valid token without the role)
 * are audited every time, under the caller's subject; refusals of a caller who proved nothing are
 * rate-limited per action, status and reason (lib/audit/refusal-limiter.ts), with the count kept.
 * Reasons name the failed check, never a token or payload content.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEvent } from '../../lib/audit/chain.js';
import { RefusalAuditLimiter } from '../../lib/audit/refusal-limiter.js';
import type { Logger } from '../../lib/log/logger.js';
import { offersCredentials } from './auth.js';
import { HTTP_ERROR_NAMES } from '../http-error-names.js';

/** Audit action per route pattern (as registered with the router). */
const ROUTE_ACTIONS: Readonly<Record<string, string>> = {
  '/decode': 'codec.decode',
  '/encode': 'codec.encode',
  '/login': 'codec.login',
  '/logout': 'codec.logout',
  '/healthz': 'codec.healthz',
  '/conflicts/:id': 'reconcile.conflict_decode',
  '/*': 'codec.preflight',
};
export const UNKNOWN_ROUTE_ACTION = 'codec.unknown-route';

/** Fixed reasons for what the framework refuses (never its message: a JSON parse error quotes the body). */
const FRAMEWORK_REASONS: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'send Content-Type: application/json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty JSON body',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'body length does not match Content-Length',
};
export function frameworkReason(err: { code?: string; statusCode?: number }, bodyLimit: number): string {
  if (err.statusCode === 413) return `body over ${bodyLimit} bytes`;
  return (err.code !== undefined ? FRAMEWORK_REASONS[err.code] : undefined) ?? 'malformed request body';
}

/** The route pattern the router matched, or undefined when no route did. */
export function matchedRoute(req: FastifyRequest): string | undefined {
  return req.is404 ? undefined : req.routeOptions.url;
}

export function namespaceOf(req: FastifyRequest): string {
  const ns = req.headers['x-namespace'];
  return typeof ns === 'string' && /^[\w.-]{1,200}$/.test(ns) ? ns : 'unspecified';
}

/** The raw path (spelling included: it shows which variant was tried), never the query (it may hold a token). */
function rawPath(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  return (q < 0 ? req.url : req.url.slice(0, q)).slice(0, 120);
}

/**
 * A large body refused before it was read: the connection is closed instead of drained, so the sender
 * cannot make us take in the rest. A small one is drained (and discarded) by Node instead, so an honest
 * client always reads its refusal (closing with unread bytes may reset the connection before it does).
 */
function largeBodyUnread(req: FastifyRequest, drainUpTo: number): boolean {
  if (req.body !== undefined) return false;
  const length = Number(req.headers['content-length'] ?? 0);
  return !(length <= drainUpTo) || req.headers['transfer-encoding'] !== undefined;
}

export type Refuse = (
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  reason: string,
  caller?: { sub?: string },
) => Promise<FastifyReply>;

export function createRefuser(deps: {
  audit: (event: AuditEvent) => Promise<unknown>;
  logger?: Logger;
  anonymousWindowMs?: number;
  /** The largest unread body drained rather than cut off. */
  drainUpTo: number;
}): Refuse {
  const limiter = new RefusalAuditLimiter(deps.anonymousWindowMs);
  const log = deps.logger;
  return async (req, reply, status, reason, caller) => {
    const route = matchedRoute(req);
    const action = route === undefined ? UNKNOWN_ROUTE_ACTION : (ROUTE_ACTIONS[route] ?? 'codec.request');
    const sub = caller?.sub;
    if (largeBodyUnread(req, deps.drainUpTo)) reply.header('connection', 'close');
    if (route !== undefined || offersCredentials(req.headers)) {
      const suppressed = sub !== undefined ? undefined : limiter.admit(`${action}|${status}|${reason}`);
      if (sub !== undefined || suppressed !== undefined) {
        const origin = typeof req.headers.origin === 'string' ? req.headers.origin.slice(0, 200) : null;
        await deps
          .audit({
            actor: sub ?? 'anonymous',
            action,
            outcome: 'failure',
            correlationId: randomUUID(),
            details: {
              route: route ?? null,
              method: req.method,
              path: rawPath(req),
              namespace: namespaceOf(req),
              status,
              reason,
              origin,
              ...(suppressed !== undefined ? { suppressedBefore: suppressed } : {}),
            },
          })
          .catch((err: unknown) => {
            log?.error({ err: { message: (err as Error).message } }, 'could not audit a codec refusal');
          });
      }
    }
    log?.warn({ status, reason, route: route ?? null, path: rawPath(req), sub }, 'codec request refused');
    return reply.code(status).send({ error: HTTP_ERROR_NAMES[status] ?? 'refused', reason });
  };
}
