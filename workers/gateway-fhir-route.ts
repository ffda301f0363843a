/**
 * The gateway's `/fhir/*` route (workers/gateway.ts): the bearer token checked first (a refusal is audited and
 * answered by the caller's `refuse`), then GET and HEAD to the read side and POST, PUT, PATCH and DELETE to the
 * write side. In its own Fastify scope so bodies reach the write handler as text: it answers a malformed body with
 * an OperationOutcome (and audits it) rather than Fastify's generic 400.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuditContext } from '../lib/audit/chain.js';
import { GatewayRefusalError } from '../lib/errors/index.js';
import type { GatewayAccess, GatewayResponse } from '../lib/gateway/access.js';
import type { FhirReadRequest } from '../lib/gateway/fhir/handler.js';
import type { FhirWriteRequest } from '../lib/gateway/fhir/write-handler.js';

export interface FhirRouteDeps {
  actor: string;
  authorize(authorization: string | undefined, correlationId: string): Promise<GatewayAccess>;
  refuse(reply: FastifyReply, err: GatewayRefusalError, ctx: AuditContext): Promise<FastifyReply>;
  read(access: GatewayAccess, request: FhirReadRequest): Promise<GatewayResponse>;
  write(access: GatewayAccess, request: FhirWriteRequest): Promise<GatewayResponse>;
  /** The public `/fhir` URL (known once the server listens). */
  baseUrl(): string;
}

export async function registerFhirRoute(app: FastifyInstance, deps: FhirRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scope.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: '/fhir/*',
      handler: async (req, reply) => {
        const ctx = { actor: deps.actor, correlationId: randomUUID() };
        let access: GatewayAccess;
        try {
          access = await deps.authorize(req.headers.authorization, ctx.correlationId);
        } catch (err) {
          if (err instanceof GatewayRefusalError) return deps.refuse(reply, err, ctx);
          throw err;
        }
        const url = new URL(req.url, 'http://gateway.invalid');
        const path = url.pathname.slice('/fhir/'.length);
        const header = (name: string) => {
          const v = req.headers[name];
          return typeof v === 'string' ? v : undefined;
        };
        const answer =
          req.method === 'GET' || req.method === 'HEAD'
            ? await deps.read(access, { method: req.method, path, query: url.searchParams, baseUrl: deps.baseUrl() })
            : await deps.write(access, {
                method: req.method,
                path,
                baseUrl: deps.baseUrl(),
                body: typeof req.body === 'string' ? req.body : undefined,
                headers: {
                  contentType: header('content-type'),
                  ifMatch: header('if-match'),
                  prefer: header('prefer'),
                  integration: header('x-ehr-integration'),
                  idempotencyKey: header('idempotency-key'),
                },
              });
        const headers = { 'content-type': 'application/fhir+json', ...answer.headers };
        return reply
          .code(answer.status)
          .headers(headers)
          .header('x-correlation-id', ctx.correlationId)
          .send(answer.body);
      },
    });
  });
}
