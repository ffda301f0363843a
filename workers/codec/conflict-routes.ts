/**
 * GET /conflicts/:id on the codec server: both sides of a reconciliation conflict's disputed elements, decoded, for
 * a caller holding the decode role (`ehrctl reconcile conflict <id> --decode`). Admitted by the same guard as
 * /decode (role checked before anything is read) and audited BEFORE the values leave (`reconcile.conflict_decoded`,
 * actor = the token's subject; details: ids and element names), failing closed when the audit cannot be written.
 */
import { randomUUID } from 'node:crypto';
import type https from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEvent } from '../../lib/audit/chain.js';
import type { Logger } from '../../lib/log/logger.js';
import type { ConflictDiff } from '../../lib/writeback/conflicts.js';
import type { Principal } from './auth.js';
import type { Refuse } from './refusals.js';

/** Where the decoded diff comes from (workers/codec-server.ts builds it from the pool and the tenant keyring). */
export interface ConflictDiffSource {
  diff(conflictId: string): Promise<ConflictDiff | undefined>;
}

export interface ConflictRoutes {
  conflicts: ConflictDiffSource;
  audit: (event: AuditEvent) => Promise<unknown>;
  log: Logger | undefined;
  refuse: Refuse;
  admitted: (req: FastifyRequest) => Principal;
  decodeGuard: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

const CONFLICT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerConflictRoutes(app: FastifyInstance<https.Server>, r: ConflictRoutes): void {
  app.get<{ Params: { id: string } }>('/conflicts/:id', { onRequest: r.decodeGuard }, async (req, reply) => {
    const principal = r.admitted(req);
    const id = req.params.id;
    if (!CONFLICT_ID.test(id)) return r.refuse(req, reply, 400, 'a conflict id is a UUID', principal);
    const diff = await r.conflicts.diff(id);
    if (!diff) return r.refuse(req, reply, 404, 'no such conflict', principal);
    try {
      await r.audit({
        actor: principal.sub,
        action: 'reconcile.conflict_decoded',
        outcome: 'success',
        tenantId: diff.tenantId,
        integrationId: diff.integrationId,
        correlationId: randomUUID(),
        details: {
          conflictId: diff.conflictId,
          resourceType: diff.resourceType,
          resourceId: diff.resourceId,
          elements: diff.elements,
          via: principal.via,
        },
      });
    } catch {
      r.log?.error({ sub: principal.sub, action: 'reconcile.conflict_decoded' }, 'refused: audit write failed');
      return reply.code(503).send({ error: 'audit_unavailable', reason: 'the decode could not be audited; refused' });
    }
    return diff;
  });
}
