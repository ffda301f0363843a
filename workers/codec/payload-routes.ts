/**
 * The codec server's payload routes, POST /encode and POST /decode (the Web UI's remote codec protocol):
 * admitted only after the route's role was checked (codec-server.ts, before the body is read), and
 * audited BEFORE the payloads leave, failing closed when the audit cannot be written. Details name the
 * namespace, counts and key ids, never payload content. Apart from codec-server.ts, which keeps the
 * server, CORS, authentication and sessions: this is what the codec is for.
 */
import { randomUUID } from 'node:crypto';
import type https from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { AuditEvent } from '../../lib/audit/chain.js';
import { payloadKeyId } from '../../lib/crypto/payload-codec.js';
import { EhrError } from '../../lib/errors/index.js';
import { fromWire, toWire } from '../../lib/crypto/codec-wire.js';
import type { Logger } from '../../lib/log/logger.js';
import type { Principal } from './auth.js';
import { namespaceOf, type Refuse } from './refusals.js';

/** Payload batches for /decode and /encode, read only once the caller holds the route's role. */
export const PAYLOAD_BODY_LIMIT = 16 * 1024 * 1024;

type Guard = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface PayloadRoutes {
  codec: PayloadCodec;
  /** Writes one audit event; must throw when it cannot (the request is then refused). */
  audit: (event: AuditEvent) => Promise<unknown>;
  log: Logger | undefined;
  refuse: Refuse;
  /** The caller the route's guard admitted the request as. */
  admitted: (req: FastifyRequest) => Principal;
  encodeGuard: Guard;
  decodeGuard: Guard;
}

export function registerPayloadRoutes(app: FastifyInstance<https.Server>, r: PayloadRoutes): void {
  /** Audits a decode or encode before its payloads leave; false when the audit could not be written. */
  const auditPayloads = async (req: FastifyRequest, principal: Principal, action: string, payloads: Payload[]) => {
    const keyIds = [...new Set(payloads.map(payloadKeyId).filter((k): k is string => k !== undefined))].slice(0, 20);
    try {
      await r.audit({
        actor: principal.sub,
        action,
        outcome: 'success',
        correlationId: randomUUID(),
        details: {
          namespace: namespaceOf(req),
          payloadCount: payloads.length,
          encryptedCount: payloads.filter((p) => payloadKeyId(p) !== undefined).length,
          keyIds,
          via: principal.via,
        },
      });
      return true;
    } catch {
      r.log?.error({ sub: principal.sub, action }, 'refused: audit write failed');
      return false;
    }
  };
  const auditUnavailable = (reply: FastifyReply, verb: string) =>
    reply.code(503).send({ error: 'audit_unavailable', reason: `the ${verb} could not be audited; refused` });

  const encodeRoute = { bodyLimit: PAYLOAD_BODY_LIMIT, onRequest: r.encodeGuard };
  const decodeRoute = { bodyLimit: PAYLOAD_BODY_LIMIT, onRequest: r.decodeGuard };

  app.post('/encode', encodeRoute, async (req, reply) => {
    const principal = r.admitted(req);
    let payloads: Payload[];
    try {
      payloads = fromWire(req.body);
    } catch (err) {
      return r.refuse(req, reply, 400, (err as Error).message, principal);
    }
    const encoded = await r.codec.encode(payloads);
    if (!(await auditPayloads(req, principal, 'codec.encode', encoded))) return auditUnavailable(reply, 'encode');
    return toWire(encoded);
  });

  app.post('/decode', decodeRoute, async (req, reply) => {
    const principal = r.admitted(req);
    let payloads: Payload[];
    try {
      payloads = fromWire(req.body);
    } catch (err) {
      return r.refuse(req, reply, 400, (err as Error).message, principal);
    }
    let decoded: Payload[];
    try {
      decoded = await r.codec.decode(payloads);
    } catch (err) {
      const reason = err instanceof EhrError ? err.message : 'payloads could not be decoded';
      return r.refuse(req, reply, 422, reason, principal);
    }
    if (!(await auditPayloads(req, principal, 'codec.decode', payloads))) return auditUnavailable(reply, 'decode');
    return toWire(decoded);
  });
}
