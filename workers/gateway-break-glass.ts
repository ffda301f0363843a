/**
 * The gateway's POST /break-glass (a consumer asks for break-glass itself; lib/gateway/break-glass-endpoint.ts):
 * the route, in its own Fastify scope so the body reaches the handler as text and the token is checked before the
 * JSON is, and the Temporal side the gateway process wires — a client with the payload codec that starts the
 * grant's breakGlassReview workflow through client/break-glass-client.ts `requestBreakGlass` (which revokes the
 * grant again if the workflow cannot start).
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuditContext } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { EhrError, GatewayRefusalError } from '../lib/errors/index.js';
import type { GatewayAccess } from '../lib/gateway/access.js';
import type { BreakGlassEndpointDeps } from '../lib/gateway/break-glass-endpoint.js';
import { handleBreakGlassRequest } from '../lib/gateway/break-glass-endpoint.js';
import type { Logger } from '../lib/log/logger.js';
import type { Pool } from '../lib/store/pool.js';
import { requestBreakGlass } from '../client/break-glass-client.js';

export interface BreakGlassRouteDeps {
  actor: string;
  breakGlass: BreakGlassEndpointDeps;
  authorize(authorization: string | undefined, correlationId: string): Promise<GatewayAccess>;
  refuse(reply: FastifyReply, err: GatewayRefusalError, ctx: AuditContext): Promise<FastifyReply>;
  logger?: Logger;
}

/** Retry-After of a 503 when the grant could not be made or its review not started (the grant was revoked). */
export const BREAK_GLASS_RETRY_AFTER_SECONDS = 30;

export async function registerBreakGlassRoute(app: FastifyInstance, deps: BreakGlassRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scope.post('/break-glass', async (req, reply) => {
      const ctx = { actor: deps.actor, correlationId: randomUUID() };
      let access: GatewayAccess | undefined;
      try {
        access = await deps.authorize(req.headers.authorization, ctx.correlationId);
        const answer = await handleBreakGlassRequest(deps.breakGlass, access, req.body, ctx);
        return reply
          .code(answer.status)
          .headers(answer.headers)
          .header('x-correlation-id', ctx.correlationId)
          .send(answer.body);
      } catch (err) {
        if (err instanceof GatewayRefusalError) return deps.refuse(reply, err, ctx);
        // E.g. Temporal unreachable: requestBreakGlass has revoked the grant again. Logged as the gateway's 500s are.
        const failure = { name: (err as Error)?.name, message: err instanceof EhrError ? err.message : undefined };
        deps.logger?.error({ err: failure, correlationId: ctx.correlationId }, 'break-glass request failed');
        const { consumerId, tenantId } = access ?? {};
        const unavailable = 'break-glass-unavailable';
        const retry = BREAK_GLASS_RETRY_AFTER_SECONDS;
        return deps.refuse(
          reply,
          new GatewayRefusalError(503, 'unavailable', unavailable, consumerId, tenantId, retry),
          ctx,
        );
      }
    });
  });
}

/** The gateway process's break-glass requests, over its Temporal client (payloads encrypted): the CLI's path. */
export function breakGlassRequests(config: Config, deps: { pool: Pool; temporal: Client }): BreakGlassEndpointDeps {
  return {
    request: (req, audit) => requestBreakGlass(deps.pool, deps.temporal, config, req, audit),
    maxMinutes: config.EHR_BREAK_GLASS_MAX_MINUTES,
  };
}
