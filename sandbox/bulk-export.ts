/**
 * Bulk Data Access IG kick-off: `[base]/$export`, `[base]/Patient/$export` and
 * `[base]/Group/[id]/$export`, at the levels the personality offers. Requires `Prefer: respond-async`
 * and `Accept: application/fhir+json`; `_type`, `_since` (only where the vendor exports incrementally),
 * `_typeFilter` (`_lastUpdated` criteria) and `_outputFormat` (NDJSON only). Answers 202 with the
 * status URL in `Content-Location`. Every group member is a patient of the data set, so the three
 * levels export the same records here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isResourceType, type ResourceType } from '../lib/domain.js';
import { logPush } from './bulk-behaviour.js';
import { createJob, type ExportRequest } from './bulk-jobs.js';
import type { SandboxContext } from './context.js';
import { admit, FHIR_JSON, sendOutcome } from './fhir-routes.js';
import type { ExportLevel } from './read-paths.js';
import { BadRequest, applyLastUpdated, single, values, type Query } from './search-params.js';
import type { AccessToken } from './smart.js';
import type { Bound } from './store.js';
import { clientMayRead, typesCovered } from './token-policy.js';

const OUTPUT_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
const KNOWN_PARAMS = new Set(['_type', '_since', '_typeFilter', '_outputFormat']);

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function parseTypeFilters(raw: string[], types: readonly ResourceType[]): ExportRequest['typeFilters'] {
  const out: ExportRequest['typeFilters'] = new Map();
  for (const filter of raw.flatMap((v) => v.split(','))) {
    const match = /^([A-Za-z]{1,64})\?(.+)$/.exec(filter);
    if (!match || !isResourceType(match[1] as string) || !types.includes(match[1] as ResourceType))
      throw new BadRequest('_typeFilter must be <exported type>?<search>');
    const criteria: { lower?: Bound; upper?: Bound } = {};
    for (const [name, value] of new URLSearchParams(match[2])) {
      if (name !== '_lastUpdated') throw new BadRequest('_typeFilter supports _lastUpdated only', 'not-supported');
      applyLastUpdated(criteria, value);
    }
    const type = match[1] as ResourceType;
    out.set(type, [...(out.get(type) ?? []), criteria]);
  }
  return out;
}

function exportRequest(
  ctx: SandboxContext,
  req: FastifyRequest<{ Querystring: Query }>,
  token: AccessToken,
  level: ExportLevel,
): ExportRequest {
  const bulk = ctx.reads.bulk;
  if (!bulk || !bulk.levels.includes(level))
    throw new Refusal(404, 'not-supported', `${level}-level $export is not supported by this server`);
  if (!/respond-async/i.test(String(req.headers.prefer ?? '')))
    throw new Refusal(400, 'invalid', 'the Prefer header must be respond-async');
  if (!/application\/fhir\+json/i.test(String(req.headers.accept ?? '')))
    throw new Refusal(400, 'invalid', 'the Accept header must be application/fhir+json');
  const vendorParams = new Set(ctx.personality.requiredParameters.map((r) => r.key));
  for (const name of Object.keys(req.query)) {
    if (!KNOWN_PARAMS.has(name) && !vendorParams.has(name))
      throw new Refusal(400, 'not-supported', 'unsupported $export parameter');
  }
  const format = single(req.query, '_outputFormat');
  if (format !== undefined && !OUTPUT_FORMATS.includes(format))
    throw new Refusal(400, 'not-supported', 'only application/fhir+ndjson output is supported');
  const allowed = [...typesCovered(token.scopes)].filter((t) => clientMayRead(ctx, token.clientId, t));
  const typeParam = values(req.query, '_type').flatMap((v) => v.split(','));
  let types: ResourceType[];
  if (typeParam.length > 0) {
    if (!typeParam.every(isResourceType)) throw new Refusal(400, 'not-supported', '_type names an unsupported type');
    types = [...new Set(typeParam as ResourceType[])];
    if (types.some((t) => !allowed.includes(t)))
      throw new Refusal(403, 'forbidden', 'the access token lacks system scopes for a type in _type');
  } else {
    if (allowed.length === 0) throw new Refusal(403, 'forbidden', 'the access token has no system read scopes');
    types = allowed;
  }
  const since = single(req.query, '_since');
  let sinceMs: number | undefined;
  if (since !== undefined) {
    if (!bulk.incremental) throw new Refusal(400, 'not-supported', '_since is not supported by this server');
    const bound: { lower?: { ms: number; inclusive: boolean } } = {};
    applyLastUpdated(bound, `gt${since.replace(/ /g, '+')}`);
    sinceMs = bound.lower?.ms;
  }
  return {
    level,
    requestUrl: `${ctx.urls.url}${req.url}`,
    clientId: token.clientId,
    types,
    sinceMs,
    typeFilters: parseTypeFilters(values(req.query, '_typeFilter'), types),
  };
}

export function statusUrl(ctx: SandboxContext, jobId: string, otherHost: boolean): string {
  return `${otherHost ? ctx.bulk.otherOrigin : ctx.urls.url}/bulk/status/${jobId}`;
}

async function kickOff(
  ctx: SandboxContext,
  req: FastifyRequest<{ Querystring: Query }>,
  reply: FastifyReply,
  level: ExportLevel,
): Promise<FastifyReply> {
  const params: Record<string, string> = {};
  for (const name of KNOWN_PARAMS) {
    const v = values(req.query, name);
    if (v.length > 0) params[name] = v.join(',');
  }
  const record = (status: number, jobId?: string): void =>
    logPush(ctx.bulk.log.kickoffs, { atMs: Date.now(), level, status, params, ...(jobId ? { jobId } : {}) });
  const token = admit(ctx, req, reply);
  if (!token) {
    record(reply.statusCode);
    return reply;
  }
  const forced = ctx.bulk.behaviour.kickoffStatus;
  if (forced !== null) {
    record(forced);
    return sendOutcome(reply, forced, forced === 429 ? 'throttled' : 'too-costly', 'export refused by the server');
  }
  let request: ExportRequest;
  try {
    request = exportRequest(ctx, req, token, level);
  } catch (err) {
    if (err instanceof Refusal || err instanceof BadRequest) {
      const status = err instanceof Refusal ? err.status : 400;
      record(status);
      return sendOutcome(reply, status, err.code, err.message);
    }
    throw err;
  }
  const job = createJob(ctx.bulk, ctx.store, ctx.changes, request, ctx.store.clockMs());
  record(202, job.id);
  const info = { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational' }] };
  return reply
    .code(202)
    .header('content-location', statusUrl(ctx, job.id, job.behaviour.statusOnOtherHost))
    .type(FHIR_JSON)
    .send(JSON.stringify(info));
}

export function registerBulkExportRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const base = ctx.personality.basePath;
  type Req = FastifyRequest<{ Querystring: Query; Params: { id: string } }>;
  app.get(`${base}/$export`, (req: Req, reply) => kickOff(ctx, req, reply, 'system'));
  app.get(`${base}/Patient/$export`, (req: Req, reply) => kickOff(ctx, req, reply, 'patient'));
  app.get(`${base}/Group/:id/$export`, async (req: Req, reply) => {
    if (ctx.reads.bulk?.levels.includes('group') && req.params.id !== ctx.reads.groupId) {
      logPush(ctx.bulk.log.kickoffs, { atMs: Date.now(), level: 'group', status: 404, params: {} });
      return sendOutcome(reply, 404, 'not-found', 'Group not found');
    }
    return kickOff(ctx, req, reply, 'group');
  });
}
