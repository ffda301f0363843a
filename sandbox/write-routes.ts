/**
 * FHIR writes, refusing what real vendors refuse: `POST [base]/:type` (create; `If-None-Exist` makes it
 * conditional: the one existing match is answered 200 and nothing is written, several matches 412) and
 * `PUT [base]/:type/:id` (a versioned update of ANY record, generated ones included; a stale `If-Match` is 412,
 * an unknown id 404 — no update-as-create — and a deleted one 410). Every write carries `Idempotency-Key`: a
 * repeated key from the same client returns the first successful answer and writes nothing, the same key for a
 * different request is refused (422). Writes become versions of the record store, so later reads, searches, history and
 * exports see them. Refusals on request and the write ledger: write-ledger.ts, write-admin.ts.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isResourceType, type ResourceType } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import { operationOutcome } from './faults.js';
import { FHIR_JSON, admit } from './fhir-routes.js';
import type { Query } from './search-params.js';
import type { AccessToken } from './smart.js';
import type { RecordRef } from './store.js';
import type { LedgerRow, StoredAnswer, WriteLedger, WriteRefusal } from './write-ledger.js';
import { editedContent } from './write-ledger.js';
import { registerWriteAdminRoutes } from './write-admin.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{8,255}$/;
const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;

type Answer = Omit<StoredAnswer, 'requestDigest'>;

function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** v2 `system/Patient.cud` (any of the letters), v1 `system/Patient.write`, `*` wildcards. */
function scopeAllowsWrite(token: AccessToken, type: ResourceType, access: 'c' | 'u'): boolean {
  return [...token.scopes].some((s) => {
    const m = /^system\/([A-Za-z*]+)\.(.+)$/.exec(s);
    if (!m || (m[1] !== type && m[1] !== '*')) return false;
    return m[2] === 'write' || m[2] === '*' || (/^[cruds]+$/.test(m[2]!) && m[2]!.includes(access));
  });
}

function outcomeAnswer(status: number, code: string, diagnostics: string): Answer {
  return {
    status,
    headers: { 'content-type': FHIR_JSON },
    body: JSON.stringify(operationOutcome(code, diagnostics)),
  };
}

function refusalAnswer(refusal: WriteRefusal): Answer {
  const answer = outcomeAnswer(refusal.status, refusal.code, 'refused by the vendor (sandbox write fault)');
  if (refusal.retryAfterSeconds !== undefined) answer.headers['retry-after'] = String(refusal.retryAfterSeconds);
  return answer;
}

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

export function registerWriteRoutes(app: FastifyInstance, ctx: SandboxContext, ledger: WriteLedger): void {
  const base = ctx.personality.basePath;
  const { stats } = ledger;

  app.addContentTypeParser('application/fhir+json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      const err = new Error('body is not JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  function resourceAnswer(ref: RecordRef, status: number): Answer {
    const resource = ctx.store.render(ref);
    return {
      status,
      headers: {
        'content-type': FHIR_JSON,
        location: `${ctx.urls.fhirBaseUrl}/${ref.type}/${ref.id}/_history/${ref.version}`,
        etag: `W/"${ref.version}"`,
        'last-modified': new Date(ref.lastUpdatedMs).toUTCString(),
      },
      body: JSON.stringify(resource),
    };
  }

  /** Admits, checks scope, body and key; replays a stored answer; else runs `write` and stores its answer. */
  async function handle(
    req: FastifyRequest<{ Params: { type: string; id?: string }; Querystring: Query }>,
    reply: FastifyReply,
    access: 'c' | 'u',
    write: (type: ResourceType, resource: Record<string, unknown>, row: LedgerRow) => Answer,
  ): Promise<FastifyReply> {
    const token = admit(ctx, req, reply);
    if (!token) return reply;
    const type = req.params.type;
    if (!isResourceType(type)) return send(reply, outcomeAnswer(404, 'not-supported', 'unknown resource type'));
    if (!scopeAllowsWrite(token, type, access)) {
      ctx.stats.forbidden++;
      return send(reply, outcomeAnswer(403, 'forbidden', `access token lacks a write scope for ${type}`));
    }
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))
      return send(
        reply,
        outcomeAnswer(400, 'required', 'Idempotency-Key header (8-255 visible characters) is required'),
      );
    const resource = req.body as Record<string, unknown> | undefined;
    if (!resource || typeof resource !== 'object' || Array.isArray(resource) || resource.resourceType !== type)
      return send(reply, outcomeAnswer(400, 'invalid', `body must be a ${type} resource`));
    const row = ledger.row(key, req.method as 'POST' | 'PUT', type);
    const ifMatch = req.headers['if-match'];
    const ifNoneExist = req.headers['if-none-exist'];
    if (typeof ifMatch === 'string') row.ifMatch = ifMatch.slice(0, 64);
    if (typeof ifNoneExist === 'string') row.ifNoneExist = ifNoneExist.slice(0, 300);
    const storeKey = `${token.clientId}\u0000${key}`;
    const requestDigest = digest(`${req.method} ${req.url}\u0000${JSON.stringify(resource)}`);
    const previous = ledger.answers.get(storeKey);
    if (previous) {
      row.noEffect++;
      if (previous.requestDigest !== requestDigest) {
        stats.keyConflicts++;
        return send(reply, outcomeAnswer(422, 'conflict', 'Idempotency-Key was already used for a different request'));
      }
      stats.replayed++;
      return reply
        .code(previous.status)
        .headers({ ...previous.headers, 'idempotent-replayed': 'true' })
        .send(previous.body);
    }
    const refusal = ledger.takeRefusal(type);
    const answer = refusal ? refusalAnswer(refusal) : write(type, resource, row);
    if (refusal) row.noEffect++;
    // Only what was carried out is remembered (as Stripe does): a refusal or a failed precondition wrote nothing,
    // so the same key may be sent again once the cause is fixed (a retried change, a re-read version).
    if (answer.status < 300) ledger.answers.set(storeKey, { requestDigest, ...answer });
    const delayMs = answer.status < 300 ? ledger.takeSlow(type) : 0;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return send(reply, answer);
  }

  app.post<{ Params: { type: string }; Querystring: Query }>(`${base}/:type`, async (req, reply) =>
    handle(req, reply, 'c', (type, resource, row) => {
      const condition = req.headers['if-none-exist'];
      if (typeof condition === 'string') {
        const found = ledger.matches(type, condition);
        if (found === undefined)
          return outcomeAnswer(400, 'not-supported', 'If-None-Exist supports identifier=[system|]value only');
        if (found.length > 1) {
          row.noEffect++;
          return outcomeAnswer(412, 'duplicate', 'If-None-Exist matches more than one resource');
        }
        const match = found[0] !== undefined ? ctx.store.lookup(type, found[0]) : undefined;
        if (match && !match.deleted) {
          stats.conditionalMatches++;
          row.noEffect++;
          row.id = match.id;
          return resourceAnswer(match, 200);
        }
      }
      const ref = ctx.store.writeContent(type, resource);
      ledger.index(type, ref.id, resource);
      stats.created++;
      row.effects++;
      row.id = ref.id;
      return resourceAnswer(ref, 201);
    }),
  );

  app.put<{ Params: { type: string; id: string }; Querystring: Query }>(`${base}/:type/:id`, async (req, reply) => {
    if (!FHIR_ID.test(req.params.id)) return send(reply, outcomeAnswer(400, 'invalid', 'invalid resource id'));
    return handle(req, reply, 'u', (type, resource, row) => {
      if (resource.id !== undefined && resource.id !== req.params.id)
        return outcomeAnswer(400, 'invalid', 'the body id differs from the URL id');
      let existing = ctx.store.lookup(type, req.params.id);
      const edit = existing && !existing.deleted ? ledger.editsOnNextWrite.get(`${type}/${existing.id}`) : undefined;
      if (existing && edit) {
        // Someone at the vendor saved their edit a moment before this write arrived.
        ledger.editsOnNextWrite.delete(`${type}/${existing.id}`);
        existing = ctx.store.writeContent(type, editedContent(ctx.store.render(existing), edit), existing.index);
      }
      if (!existing) return outcomeAnswer(404, 'not-found', `${type} not found (update-as-create is not supported)`);
      if (existing.deleted) return outcomeAnswer(410, 'deleted', `${type} was deleted`);
      const ifMatch = req.headers['if-match'];
      if (typeof ifMatch === 'string' && ifMatch !== `W/"${existing.version}"`) {
        stats.preconditionFailed++;
        row.noEffect++;
        return outcomeAnswer(412, 'conflict', 'If-Match does not match the current version');
      }
      const ref = ctx.store.writeContent(type, resource, existing.index);
      ledger.index(type, ref.id, resource);
      stats.updated++;
      row.effects++;
      row.id = ref.id;
      return resourceAnswer(ref, 200);
    });
  });

  registerWriteAdminRoutes(app, ctx, ledger);
}
