/**
 * The one door to vendors (DESIGN §4 invariant 5). Every request — token requests included —
 * goes through `send` (vendor-exchange.ts), which applies the TLS policy, a timeout, the response size
 * cap and a correlation id header, classifies failures into retry classes, and writes one audit event per
 * call, success or failure. An audit write failure fails the call (fail closed).
 */
import { randomUUID } from 'node:crypto';
import { IDEMPOTENCY_KEY_PATTERN } from '../domain.js';
import { BulkExportError, InvalidArgumentError, VendorAuthError, VendorHttpError } from '../errors/index.js';
import { assertTransportAllowed, safePath } from './http-policy.js';
import { fileOrigin } from './bulk-hosts.js';
import type { NdjsonLine } from './ndjson-lines.js';
import { ndjsonLines } from './ndjson-lines.js';
import { applyExtraParameters } from './profiles/adapters.js';
import type { IdleTimeout } from './stream-body.js';
import { bodyChunks } from './stream-body.js';
import { VendorAgents } from './tls-options.js';
import { TokenManager } from './token-manager.js';
import { revocationRequest, tokenRequest } from './client-auth.js';
import type {
  CallContext,
  IntegrationCredentials,
  VendorClientDeps,
  VendorResponse,
  WriteContext,
} from './vendor-call.js';
import { assertSameOrigin, oauthErrorCode, outcomeCodeOf, parseTokenResponse, profileOf } from './vendor-answers.js';
import type { ExchangeHost, RawRequest, SendOptions } from './vendor-exchange.js';
import { auditedExchange } from './vendor-exchange.js';

const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
/** A conditional create's criterion: one identifier token (our system and a change id), never content. */
const IF_NONE_EXIST = /^identifier=[A-Za-z0-9._:/-]{1,200}\|[A-Za-z0-9._:/-]{1,200}$/;

export class VendorClient {
  readonly tokens: TokenManager;
  /** Tokens for writes (write-back): the read scopes plus the write scopes of the types it writes. */
  readonly writeTokens: TokenManager;
  /** Per-integration https agents (trust, client certificate, TLS 1.2 floor); forget() on revocation. */
  readonly agents = new VendorAgents();

  private readonly exchangeHost: ExchangeHost;

  constructor(private readonly deps: VendorClientDeps) {
    this.tokens = new TokenManager((integrationId) => this.requestToken(integrationId, false));
    this.writeTokens = new TokenManager((integrationId) => this.requestToken(integrationId, true));
    this.exchangeHost = {
      deps,
      agents: this.agents,
      track: (integrationId, exchange) => this.track(integrationId, exchange),
      forget: (integrationId) => this.forget(integrationId),
    };
  }

  /** Requests that passed the revocation gate and have not finished, per integration. */
  private readonly inflight = new Map<string, Set<Promise<unknown>>>();

  /** Streamed downloads in progress, per integration: forget() stops them mid-file. */
  private readonly streams = new Map<string, Set<AbortController>>();

  /** Drops every token and connection of an integration (revocation, restore) and stops its downloads. */
  forget(integrationId: string): void {
    this.tokens.forget(integrationId);
    this.writeTokens.forget(integrationId);
    this.agents.forget(integrationId);
    for (const stream of this.streams.get(integrationId) ?? [])
      stream.abort(new Error('integration credentials changed'));
  }

  /**
   * Resolves once every request of the integration that had passed the gate has finished (the
   * vendor has received it). Requests starting later see the new state at the gate.
   */
  async settled(integrationId: string): Promise<void> {
    await Promise.allSettled([...(this.inflight.get(integrationId) ?? [])]);
  }

  /**
   * On revocation: forget the integration's tokens first (nothing more is sent with them), then, when
   * a token was held and the vendor has an RFC 7009 endpoint, revoke it there. Audited as
   * vendor.token_revocation; returns whether the vendor accepted it (undefined: nothing to revoke).
   */
  async revokeAtVendor(integrationId: string): Promise<boolean | undefined> {
    const held = [this.tokens.peek(integrationId), this.writeTokens.peek(integrationId)].filter((t) => t !== undefined);
    this.forget(integrationId);
    if (held.length === 0 || !this.deps.revocationTarget) return undefined;
    const target = await this.deps.revocationTarget(integrationId);
    if (!target) return undefined;
    let accepted = true;
    for (const token of held) {
      const request = await revocationRequest(target.cred, token);
      const res = await this.send(
        target.cred,
        { correlationId: randomUUID(), purpose: 'auth.revoke' },
        { method: 'POST', url: new URL(target.endpoint), headers: request.headers, body: request.body },
        { ungated: true },
      );
      accepted &&= res.status === 200;
    }
    return accepted;
  }

  /** An authenticated GET. A 401 invalidates the token and retries exactly once with a fresh one. */
  async get(
    integrationId: string,
    url: string,
    ctx: CallContext,
    accept = 'application/fhir+json',
    /** e.g. `Cache-Control: no-cache` on searches; never authorization (the door sets it). */
    headers: Record<string, string> = {},
  ): Promise<VendorResponse> {
    return this.authorized(integrationId, ctx, url, { method: 'GET', headers: { ...headers, accept } });
  }

  /**
   * An authenticated request with headers of the caller's choosing (Bulk Data: `Prefer: respond-async` on a
   * kick-off, DELETE on a status URL), same rules as get() except that `anywhereOnOrigin` lets it reach any
   * path of the vendor's origin (the IG puts status URLs wherever the server likes; many servers, and the
   * sandbox, outside the FHIR base). The answer's headers come back (Content-Location, Retry-After,
   * X-Progress); with `outcomeOnError` a refusal's VendorHttpError carries the vendor's OperationOutcome code.
   */
  async request(
    integrationId: string,
    url: string,
    ctx: CallContext,
    opts: {
      method: 'GET' | 'DELETE';
      headers: Record<string, string>;
      outcomeOnError?: boolean;
      anywhereOnOrigin?: boolean;
    },
  ): Promise<VendorResponse> {
    const { method, headers, outcomeOnError, anywhereOnOrigin } = opts;
    return this.authorized(integrationId, ctx, url, { method, headers }, { outcomeOnError, anywhereOnOrigin });
  }

  /**
   * A Bulk Data file, streamed: `consume` reads its lines as they arrive (never the whole file in memory; no
   * response size cap, a line cap instead, and an idle timeout rather than a total one). The URL must be on
   * the vendor's origin or a host in `fileHosts`; the bearer token goes only when `withToken` (the manifest's
   * requiresAccessToken). One audit event per download, written when the body has been read.
   */
  async streamLines<T>(
    integrationId: string,
    url: string,
    ctx: CallContext,
    opts: { withToken: boolean; fileHosts: readonly string[]; maxLineBytes: number; signal?: AbortSignal },
    consume: (lines: AsyncIterable<NdjsonLine>) => Promise<T>,
  ): Promise<T> {
    const cred = await this.deps.credentials(integrationId);
    const target = new URL(url);
    if (fileOrigin(target, cred.baseUrl, opts.fileHosts) === 'refused')
      throw new BulkExportError(
        'BULK_HOST_REFUSED',
        'file',
        `a file URL on ${target.host} is not an allowed file host`,
      );
    const stop = new AbortController();
    let mine = this.streams.get(integrationId);
    if (!mine) this.streams.set(integrationId, (mine = new Set()));
    mine.add(stop);
    const signal = opts.signal ? AbortSignal.any([stop.signal, opts.signal]) : stop.signal;
    const holder: { done: boolean; value?: T } = { done: false };
    const stream = async (res: Response, idle: IdleTimeout): Promise<number> => {
      const counter = { bytes: 0 };
      const chunks = bodyChunks(res.body, idle, counter, safePath(target));
      holder.value = await consume(ndjsonLines(chunks, opts.maxLineBytes));
      holder.done = true;
      return counter.bytes;
    };
    try {
      for (let attempt = 1; ; attempt++) {
        // An open server (auth method none) has no token to give, whatever its manifest says (HAPI says true).
        const withToken = opts.withToken && cred.authMethod !== 'none';
        const token = withToken ? await this.tokens.accessToken(integrationId) : undefined;
        const headers: Record<string, string> = { accept: 'application/fhir+ndjson' };
        if (token) headers.authorization = `Bearer ${token}`;
        const res = await this.send(cred, ctx, { method: 'GET', url: target, headers }, { stream, signal });
        if (holder.done) return holder.value as T;
        if (res.status === 401 && token && attempt === 1) {
          this.tokens.invalidate(integrationId, token);
          continue;
        }
        throw new VendorAuthError(
          integrationId,
          `the file download was refused (401${token ? '' : ', no token sent'})`,
        );
      }
    } finally {
      mine.delete(stop);
      if (mine.size === 0 && this.streams.get(integrationId) === mine) this.streams.delete(integrationId);
    }
  }

  /**
   * POST a new FHIR resource with an Idempotency-Key: a retry with the same key returns the first
   * result and creates nothing more (DESIGN §4 invariant 9); with `ifNoneExist` (`identifier=<system>|<value>`)
   * a conditional create, for vendors that honour that instead. A non-2xx answer is a classified error carrying
   * the OperationOutcome's issue code.
   */
  async create(
    integrationId: string,
    resourceType: string,
    resource: Record<string, unknown>,
    ctx: WriteContext & { ifNoneExist?: string },
  ): Promise<VendorResponse> {
    if (!RESOURCE_TYPE.test(resourceType))
      throw new InvalidArgumentError('resourceType', 'expected a FHIR resource type name');
    if (ctx.ifNoneExist !== undefined && !IF_NONE_EXIST.test(ctx.ifNoneExist))
      throw new InvalidArgumentError('ifNoneExist', 'expected identifier=<system>|<value> of identifiers only');
    const extra: Record<string, string> = ctx.ifNoneExist !== undefined ? { 'if-none-exist': ctx.ifNoneExist } : {};
    return this.write(integrationId, ctx, 'POST', resourceType, resource, extra);
  }

  /** PUT (update) a FHIR resource by id, with an Idempotency-Key and optional If-Match. */
  async update(
    integrationId: string,
    resourceType: string,
    id: string,
    resource: Record<string, unknown>,
    ctx: WriteContext & { ifMatch?: string },
  ): Promise<VendorResponse> {
    if (!RESOURCE_TYPE.test(resourceType))
      throw new InvalidArgumentError('resourceType', 'expected a FHIR resource type name');
    if (!FHIR_ID.test(id)) throw new InvalidArgumentError('id', 'expected a FHIR resource id');
    const extra: Record<string, string> = ctx.ifMatch ? { 'if-match': ctx.ifMatch } : {};
    return this.write(integrationId, ctx, 'PUT', `${resourceType}/${id}`, resource, extra);
  }

  private async write(
    integrationId: string,
    ctx: WriteContext,
    method: 'POST' | 'PUT',
    relative: string,
    resource: Record<string, unknown>,
    extra: Record<string, string>,
  ): Promise<VendorResponse> {
    if (!IDEMPOTENCY_KEY_PATTERN.test(ctx.idempotencyKey))
      throw new InvalidArgumentError('idempotencyKey', 'use 8-255 letters, digits and . _ : / + = -');
    const cred = await this.deps.credentials(integrationId);
    const url = `${cred.baseUrl.replace(/\/$/, '')}/${relative}`;
    const headers: Record<string, string> = {
      accept: 'application/fhir+json',
      'content-type': 'application/fhir+json',
      'idempotency-key': ctx.idempotencyKey,
      ...extra,
    };
    const body = JSON.stringify(resource);
    const res = await this.authorized(
      integrationId,
      ctx,
      url,
      { method, headers, body },
      { outcomeOnError: true, forWrites: true },
    );
    // send() hands a POST's 400 back (token endpoints answer 400 for OAuth errors); a FHIR write's is an error.
    if (res.status >= 400)
      throw new VendorHttpError(res.status, method, safePath(new URL(url)), undefined, outcomeCodeOf(res.body));
    return res;
  }

  /**
   * One authenticated FHIR request: same-origin check, the profile's extra parameters, a token from
   * the token manager; a 401 invalidates the token and retries exactly once with a fresh one.
   */
  private async authorized(
    integrationId: string,
    ctx: CallContext,
    url: string,
    req: { method: RawRequest['method']; headers: Record<string, string>; body?: string },
    sendOptions: SendOptions & { anywhereOnOrigin?: boolean; forWrites?: boolean } = {},
  ): Promise<VendorResponse> {
    const cred = await this.deps.credentials(integrationId);
    const tokens = sendOptions.forWrites ? this.writeTokens : this.tokens;
    const target = new URL(url);
    assertTransportAllowed(target);
    assertSameOrigin(target, cred.baseUrl, sendOptions.anywhereOnOrigin);
    const headers = { ...req.headers };
    const profile = profileOf(cred.vendor);
    if (profile) applyExtraParameters(profile, target, headers, cred.vendorParams ?? {});
    if (cred.authMethod === 'none') {
      // An open server (registered with an acknowledgement): no token, no Authorization header.
      const res = await this.send(cred, ctx, { method: req.method, url: target, headers, body: req.body });
      if (res.status === 401) throw new VendorAuthError(integrationId, 'the server demands authentication (401)');
      return res;
    }
    for (let attempt = 1; ; attempt++) {
      const token = await tokens.accessToken(integrationId);
      const res = await this.send(
        cred,
        ctx,
        { method: req.method, url: target, headers: { ...headers, authorization: `Bearer ${token}` }, body: req.body },
        sendOptions,
      );
      if (res.status !== 401) return res;
      tokens.invalidate(integrationId, token);
      if (attempt === 2)
        throw new VendorAuthError(integrationId, 'the vendor refused a freshly issued access token (401)');
    }
  }

  private async track<T>(integrationId: string, exchange: Promise<T>): Promise<T> {
    let set = this.inflight.get(integrationId);
    if (!set) this.inflight.set(integrationId, (set = new Set()));
    set.add(exchange);
    try {
      return await exchange;
    } finally {
      set.delete(exchange);
      if (set.size === 0 && this.inflight.get(integrationId) === set) this.inflight.delete(integrationId);
    }
  }

  private async requestToken(
    integrationId: string,
    forWrites: boolean,
  ): Promise<{ accessToken: string; expiresInSeconds: number; scope: string }> {
    const cred = await this.deps.credentials(integrationId);
    // A fresh client authentication (a new assertion and jti) for every request, retries included.
    const request = await tokenRequest(cred, forWrites);
    const ctx = { correlationId: randomUUID(), purpose: 'auth.token' };
    const res = await this.send(cred, ctx, {
      method: 'POST',
      url: new URL(cred.tokenUrl),
      headers: request.headers,
      body: request.body,
    });
    if (res.status === 400 || res.status === 401) {
      throw new VendorAuthError(
        integrationId,
        `token endpoint refused the client (${cred.authMethod ?? 'private_key_jwt'}: ${oauthErrorCode(res.body)})`,
      );
    }
    const parsed = parseTokenResponse(res.body);
    if (!parsed) throw new VendorAuthError(integrationId, 'token endpoint returned an unreadable token response', true);
    return parsed;
  }

  /** One HTTP exchange, audited (vendor-exchange.ts). */
  private send(cred: IntegrationCredentials, ctx: CallContext, req: RawRequest, opts: SendOptions = {}) {
    return auditedExchange(this.exchangeHost, cred, ctx, req, opts);
  }
}
