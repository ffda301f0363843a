/**
 * FHIR R4 REST under the personality's base path: search with `_lastUpdated` and keyset (`_cursor`) or
 * offset (`_getpagesoffset`) paging, read, CapabilityStatement; the personality's rate limit and
 * required parameters; injected faults.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isResourceType, type ResourceType } from '../lib/domain.js';
import { capabilityStatement } from './capability.js';
import { LEDGER_MAX, type LedgerEntry, type SandboxContext } from './context.js';
import { faultResponse, operationOutcome, type SearchFault } from './faults.js';
import { missingRequiredParameter, type Personality } from './personalities.js';
import { BadRequest, encodeCursor, parseSearch, type ParsedSearch, type Query } from './search-params.js';
import { assertReadPathAllowed, cachedAnswer, countMatches, remember, runSearch } from './search-exec.js';
import { scopeAllows, tokenHash, type AccessToken } from './smart.js';
import { clientMayRead } from './token-policy.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const COMMON_SEARCH_PARAMS = ['_count', '_lastUpdated', '_sort', '_format', '_summary', '_id', 'patient'];
/** A hung request is let go after this long even if the client never gives up. */
const HANG_LIMIT_MS = 600_000;

function searchParamsOf(p: Personality): Set<string> {
  const paging = p.paging === 'offset' ? '_getpagesoffset' : '_cursor';
  return new Set([
    ...COMMON_SEARCH_PARAMS,
    paging,
    ...p.requiredParameters.filter((r) => r.in === 'query').map((r) => r.key),
  ]);
}

function sendOutcome(reply: FastifyReply, status: number, code: string, diagnostics: string): FastifyReply {
  return reply
    .code(status)
    .type(FHIR_JSON)
    .send(JSON.stringify(operationOutcome(code, diagnostics)));
}

/** Checks the bearer token (401) and, when a type is given, its scopes (403). Sends the refusal itself. */
export function authorize(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): AccessToken | undefined {
  const token = ctx.auth.authenticate(req.headers.authorization);
  if (!token) {
    ctx.stats.rejectedTokens++;
    reply.header('www-authenticate', 'Bearer error="invalid_token"');
    sendOutcome(reply, 401, 'login', 'missing, unknown or expired access token');
    return undefined;
  }
  return token;
}

export function checkType(
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
export function admit(
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
  pageSize: number,
): string {
  const next = new URLSearchParams();
  next.set('_count', String(parsed.query.count));
  for (const v of parsed.lastUpdated) next.append('_lastUpdated', v);
  if (parsed.sort) next.set('_sort', parsed.sort);
  if (parsed.patient !== undefined) next.set('patient', parsed.patient);
  if (parsed.ids !== undefined) next.set('_id', parsed.ids.join(','));
  // Vendors echo their own required query parameters (athenahealth's practice) in next links.
  for (const r of ctx.personality.requiredParameters) {
    const v = req.query[r.key];
    if (r.in === 'query' && typeof v === 'string') next.set(r.key, v);
  }
  if (ctx.personality.paging === 'offset') next.set('_getpagesoffset', String(parsed.offset + parsed.query.count));
  else next.set('_cursor', encodeCursor(last.lastUpdatedMs, last.id, parsed.served + pageSize));
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
      assertReadPathAllowed(ctx, type, parsed);
    } catch (err) {
      if (err instanceof BadRequest) return sendOutcome(reply, 400, err.code, err.message);
      throw err;
    }
    const typeUrl = `${ctx.urls.fhirBaseUrl}/${type}`;
    const cacheKey = `${token.clientId}\n${req.url}`;
    const cached = cachedAnswer(ctx, cacheKey, req.headers['cache-control']);
    if (cached) return reply.code(cached.status).type(FHIR_JSON).header('x-cache', 'HIT').send(cached.body);
    if (parsed.summaryCount) {
      const count = { resourceType: 'Bundle', type: 'searchset', total: countMatches(ctx, type, parsed) };
      const down = ctx.faults.takeUnavailable(type);
      if (down) {
        ctx.stats.faultsInjected++;
        const raw = faultResponse(down, type, { ...count, link: [], entry: [] });
        if (raw) return reply.code(raw.status).headers(raw.headers).send(raw.body);
      }
      return reply.type(FHIR_JSON).send(JSON.stringify(count));
    }
    const result = runSearch(ctx, type, parsed);
    const link: Array<{ relation: string; url: string }> = [{ relation: 'self', url: `${ctx.urls.url}${req.url}` }];
    const last = result.records[result.records.length - 1];
    if (result.hasMore && last)
      link.push({ relation: 'next', url: nextLink(ctx, typeUrl, req, parsed, last, result.records.length) });
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
    const body = JSON.stringify(bundle);
    remember(ctx, cacheKey, 200, body);
    return reply.type(FHIR_JSON).send(body);
  });

  app.get<{ Params: { type: string; id: string }; Querystring: Query }>(`${base}/:type/:id`, async (req, reply) => {
    ctx.stats.readRequests++;
    const token = admit(ctx, req, reply);
    if (!token) return reply;
    const type = checkType(ctx, token, req.params.type, reply);
    if (!type) return reply;
    const ref = ctx.store.lookup(type, req.params.id);
    if (!ref) return sendOutcome(reply, 404, 'not-found', `${type} not found`);
    if (ref.deleted) return sendOutcome(reply, 410, 'deleted', `${type} was deleted`);
    ctx.stats.served[type]++;
    return reply
      .type(FHIR_JSON)
      .header('etag', `W/"${ref.version}"`)
      .header('last-modified', new Date(ref.lastUpdatedMs).toUTCString())
      .send(JSON.stringify(ctx.store.render(ref)));
  });
}

export { sendOutcome };
