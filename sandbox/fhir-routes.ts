/**
 * FHIR R4 REST under the personality's base path: search with `_lastUpdated` and keyset (`_cursor`) or
 * offset (`_getpagesoffset`) paging, read, CapabilityStatement; the personality's rate limit and
 * required parameters; injected faults.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RESOURCE_TYPES, isResourceType, type ResourceType } from '../lib/domain.js';
import { LEDGER_MAX, type LedgerEntry, type SandboxContext } from './context.js';
import { faultResponse, operationOutcome, type SearchFault } from './faults.js';
import { missingRequiredParameter, type Personality } from './personalities.js';
import { scopeAllows, tokenHash, type AccessToken } from './smart.js';
import type { Bound, SearchQuery } from './store.js';
import { clientMayRead } from './token-policy.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const DEFAULT_COUNT = 100;
const COMMON_SEARCH_PARAMS = ['_count', '_lastUpdated', '_sort', '_format'];
/** A hung request is let go after this long even if the client never gives up. */
const HANG_LIMIT_MS = 600_000;
const MAX_OFFSET = 10_000_000;

function searchParamsOf(p: Personality): Set<string> {
  const paging = p.paging === 'offset' ? '_getpagesoffset' : '_cursor';
  return new Set([
    ...COMMON_SEARCH_PARAMS,
    paging,
    ...p.requiredParameters.filter((r) => r.in === 'query').map((r) => r.key),
  ]);
}
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

class BadRequest extends Error {}

type Query = Record<string, string | string[] | undefined>;

function sendOutcome(reply: FastifyReply, status: number, code: string, diagnostics: string): FastifyReply {
  return reply
    .code(status)
    .type(FHIR_JSON)
    .send(JSON.stringify(operationOutcome(code, diagnostics)));
}

function values(query: Query, name: string): string[] {
  const v = query[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function single(query: Query, name: string): string | undefined {
  const all = values(query, name);
  if (all.length > 1) throw new BadRequest(`${name} may appear only once`);
  return all[0];
}

export function encodeCursor(ms: number, id: string): string {
  return Buffer.from(`${ms}|${id}`, 'utf8').toString('base64url');
}

function decodeCursor(raw: string): { ms: number; id: string } {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(raw) ? Buffer.from(raw, 'base64url').toString('utf8') : '';
  const match = /^(\d{1,16})\|([a-z0-9-]{1,64})$/.exec(text);
  if (!match) throw new BadRequest('invalid _cursor');
  return { ms: Number(match[1]), id: match[2] as string };
}

interface ParsedSearch {
  query: SearchQuery;
  lastUpdated: string[];
  sort: string | undefined;
  offset: number;
}

function parseSearch(query: Query, maxPageSize: number, allowed: ReadonlySet<string>): ParsedSearch {
  for (const name of Object.keys(query)) {
    if (!allowed.has(name)) {
      throw new BadRequest(
        /^[A-Za-z_:.-]{1,40}$/.test(name) ? `unsupported search parameter ${name}` : 'unsupported search parameter',
      );
    }
  }
  const countRaw = single(query, '_count');
  let count = DEFAULT_COUNT;
  if (countRaw !== undefined) {
    if (!/^\d{1,9}$/.test(countRaw)) throw new BadRequest('_count must be a non-negative integer');
    count = Number(countRaw);
  }
  count = Math.min(count, maxPageSize);
  const sort = single(query, '_sort');
  if (sort !== undefined && sort !== '_lastUpdated') throw new BadRequest('only _sort=_lastUpdated is supported');
  const format = single(query, '_format');
  if (format !== undefined && !['json', 'application/json', 'application/fhir+json'].includes(format)) {
    throw new BadRequest('only JSON is supported');
  }
  const q: SearchQuery = { count };
  const lastUpdated = values(query, '_lastUpdated').map((v) => v.replace(/ /g, '+'));
  for (const value of lastUpdated) {
    const match = /^(gt|ge|lt|le)(.*)$/.exec(value);
    if (!match || !INSTANT.test(match[2] as string))
      throw new BadRequest('_lastUpdated must be gt|ge|lt|le followed by a date or instant');
    const ms = Date.parse(match[2] as string);
    if (Number.isNaN(ms)) throw new BadRequest('_lastUpdated is not a valid instant');
    const prefix = match[1] as string;
    const bound: Bound = { ms, inclusive: prefix === 'ge' || prefix === 'le' };
    if (prefix === 'gt' || prefix === 'ge') {
      if (!q.lower || bound.ms > q.lower.ms || (bound.ms === q.lower.ms && !bound.inclusive)) q.lower = bound;
    } else if (!q.upper || bound.ms < q.upper.ms || (bound.ms === q.upper.ms && !bound.inclusive)) {
      q.upper = bound;
    }
  }
  const cursor = single(query, '_cursor');
  if (cursor !== undefined) q.after = decodeCursor(cursor);
  const offsetRaw = single(query, '_getpagesoffset');
  if (offsetRaw !== undefined && (!/^\d{1,8}$/.test(offsetRaw) || Number(offsetRaw) > MAX_OFFSET))
    throw new BadRequest('_getpagesoffset must be a non-negative integer');
  return { query: q, lastUpdated, sort, offset: offsetRaw === undefined ? 0 : Number(offsetRaw) };
}

/** Checks the bearer token (401) and, when a type is given, its scopes (403). Sends the refusal itself. */
function authorize(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): AccessToken | undefined {
  const token = ctx.auth.authenticate(req.headers.authorization);
  if (!token) {
    ctx.stats.rejectedTokens++;
    reply.header('www-authenticate', 'Bearer error="invalid_token"');
    sendOutcome(reply, 401, 'login', 'missing, unknown or expired access token');
    return undefined;
  }
  return token;
}

function checkType(
  ctx: SandboxContext,
  token: AccessToken,
  rawType: string,
  reply: FastifyReply,
): ResourceType | undefined {
  if (!isResourceType(rawType)) {
    sendOutcome(reply, 404, 'not-supported', 'unknown or unsupported resource type');
    return undefined;
  }
  if (!scopeAllows(token, rawType) || !clientMayRead(ctx, token.clientId, rawType)) {
    ctx.stats.forbidden++;
    sendOutcome(reply, 403, 'forbidden', `access token lacks scope system/${rawType}.rs`);
    return undefined;
  }
  return rawType;
}

export function capabilityStatement(ctx: SandboxContext): Record<string, unknown> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2024-01-01',
    publisher: 'ehr-connectors sandbox',
    kind: 'instance',
    software: { name: 'ehr-connectors sandbox', version: '0.1.0' },
    implementation: { description: 'Simulated EHR vendor (synthetic data only)', url: ctx.urls.fhirBaseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
              ],
            },
          ],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: ctx.urls.tokenUrl }],
            },
          ],
        },
        resource: RESOURCE_TYPES.map((type) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          versioning: 'versioned',
          searchParam: [{ name: '_lastUpdated', type: 'date' }],
        })),
      },
    ],
  };
}

/** The sandbox's request ledger: arrival time and token hash of every FHIR request, then its status. */
export function registerLedger(app: FastifyInstance, ctx: SandboxContext): void {
  const entries = new WeakMap<FastifyRequest, LedgerEntry>();
  const base = ctx.personality.basePath;
  const resourceOf = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([A-Za-z]{1,64})`);
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith(`${base}/`) || req.url.startsWith(`${base}/.well-known`)) return;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const entry: LedgerEntry = {
      atMs: Date.now(),
      tokenHash: match ? tokenHash(match[1] as string) : '',
      method: req.method,
      resource: resourceOf.exec(req.url)?.[1] ?? '',
    };
    entries.set(req, entry);
    ctx.ledger.push(entry);
    if (ctx.ledger.length > LEDGER_MAX) ctx.ledger.splice(0, ctx.ledger.length - LEDGER_MAX);
  });
  app.addHook('onResponse', async (req, reply) => {
    const entry = entries.get(req);
    if (entry) entry.status = reply.statusCode;
  });
}

/**
 * What every FHIR request meets before its own logic: the rate limit (every call counts), the bearer
 * token, then the personality's required parameters. Sends the refusal itself.
 */
function admit(
  ctx: SandboxContext,
  req: FastifyRequest<{ Querystring: Query }>,
  reply: FastifyReply,
): AccessToken | undefined {
  const decision = ctx.rateLimiter.take();
  if (!decision.allowed) {
    ctx.stats.rateLimited++;
    if (decision.retryAfterSeconds !== undefined) reply.header('retry-after', String(decision.retryAfterSeconds));
    sendOutcome(reply, 429, 'throttled', 'rate limit exceeded');
    return undefined;
  }
  const token = authorize(ctx, req, reply);
  if (!token) return undefined;
  const missing = missingRequiredParameter(ctx.personality, req.query, req.headers);
  if (missing !== undefined) {
    ctx.stats.missingParameters++;
    sendOutcome(reply, 400, 'required', `${missing} is required`);
    return undefined;
  }
  return token;
}

/** The next page's URL: the same search, one page on, with the personality's paging style. */
function nextLink(
  ctx: SandboxContext,
  typeUrl: string,
  req: FastifyRequest<{ Querystring: Query }>,
  parsed: ParsedSearch,
  last: { lastUpdatedMs: number; id: string },
): string {
  const next = new URLSearchParams();
  next.set('_count', String(parsed.query.count));
  for (const v of parsed.lastUpdated) next.append('_lastUpdated', v);
  if (parsed.sort) next.set('_sort', parsed.sort);
  // Vendors echo their own required query parameters (athenahealth's practice) in next links.
  for (const r of ctx.personality.requiredParameters) {
    const v = req.query[r.key];
    if (r.in === 'query' && typeof v === 'string') next.set(r.key, v);
  }
  if (ctx.personality.paging === 'offset') next.set('_getpagesoffset', String(parsed.offset + parsed.query.count));
  else next.set('_cursor', encodeCursor(last.lastUpdatedMs, last.id));
  return `${typeUrl}?${next.toString()}`;
}

/** 'slow' delays, 'hang' holds the connection until the client gives up; true when the request is taken over. */
async function applyTimingFault(
  fault: SearchFault | undefined,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<boolean> {
  if (fault?.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, fault.delayMs ?? 2_000));
  if (fault?.kind !== 'hang') return false;
  reply.hijack();
  const letGo = setTimeout(() => req.raw.socket?.destroy(), HANG_LIMIT_MS);
  letGo.unref();
  req.raw.socket?.once('close', () => clearTimeout(letGo));
  return true;
}

export function registerFhirRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const base = ctx.personality.basePath;
  const allowedParams = searchParamsOf(ctx.personality);
  app.get(`${base}/metadata`, async (_req, reply) =>
    reply.type(FHIR_JSON).send(JSON.stringify(capabilityStatement(ctx))),
  );

  app.get<{ Params: { type: string }; Querystring: Query }>(`${base}/:type`, async (req, reply) => {
    ctx.stats.searchRequests++;
    const token = admit(ctx, req, reply);
    if (!token) return reply;
    const type = checkType(ctx, token, req.params.type, reply);
    if (!type) return reply;
    let parsed: ParsedSearch;
    try {
      parsed = parseSearch(req.query, ctx.maxPageSize, allowedParams);
    } catch (err) {
      if (err instanceof BadRequest) return sendOutcome(reply, 400, 'invalid', err.message);
      throw err;
    }
    const result = ctx.store.searchAt(type, parsed.query, parsed.offset);
    const typeUrl = `${ctx.urls.fhirBaseUrl}/${type}`;
    const link: Array<{ relation: string; url: string }> = [{ relation: 'self', url: `${ctx.urls.url}${req.url}` }];
    const last = result.records[result.records.length - 1];
    if (result.hasMore && last) link.push({ relation: 'next', url: nextLink(ctx, typeUrl, req, parsed, last) });
    const bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: result.total,
      link,
      entry: result.records.map((ref) => ({
        fullUrl: `${typeUrl}/${ref.id}`,
        resource: ctx.store.render(ref),
        search: { mode: 'match' },
      })),
    };
    const fault = ctx.faults.take(type);
    if (fault) ctx.stats.faultsInjected++;
    if (await applyTimingFault(fault, req, reply)) return reply;
    const raw = fault ? faultResponse(fault, type, bundle) : undefined;
    if (raw) return reply.code(raw.status).headers(raw.headers).send(raw.body);
    // This page is good; the token dies before the next one (a vendor expiring sessions mid-paging).
    if (fault?.kind === 'expire-token') ctx.auth.expireTokens(token.clientId);
    ctx.stats.served[type] += bundle.entry.length;
    return reply.type(FHIR_JSON).send(JSON.stringify(bundle));
  });

  app.get<{ Params: { type: string; id: string }; Querystring: Query }>(`${base}/:type/:id`, async (req, reply) => {
    ctx.stats.readRequests++;
    const token = admit(ctx, req, reply);
    if (!token) return reply;
    const type = checkType(ctx, token, req.params.type, reply);
    if (!type) return reply;
    const ref = ctx.store.lookup(type, req.params.id);
    if (!ref) return sendOutcome(reply, 404, 'not-found', `${type} not found`);
    ctx.stats.served[type]++;
    return reply
      .type(FHIR_JSON)
      .header('etag', `W/"${ref.version}"`)
      .header('last-modified', new Date(ref.lastUpdatedMs).toUTCString())
      .send(JSON.stringify(ctx.store.render(ref)));
  });
}

export { sendOutcome };
