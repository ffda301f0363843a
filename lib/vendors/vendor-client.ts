/**
 * The one door to vendors (DESIGN §4 invariant 5). Every request — token requests included —
 * goes through `send`, which applies the TLS policy, a timeout, the response size cap and a
 * correlation id header, classifies failures into retry classes, and writes one audit event per
 * call, success or failure. An audit write failure fails the call (fail closed).
 */
import { randomUUID } from 'node:crypto';
import {
  EhrError,
  InvalidArgumentError,
  VendorAuthError,
  VendorHttpError,
  VendorNetworkError,
  VendorTlsError,
} from '../errors/index.js';
import { assertTransportAllowed, errorForStatus, readBodyCapped, safePath } from './http-policy.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import { applyExtraParameters } from './profiles/adapters.js';
import { VendorAgents, httpsExchange, tlsFailureCode } from './tls-options.js';
import { TokenManager } from './token-manager.js';
import { revocationRequest, tokenRequest } from './client-auth.js';
import type {
  CallContext,
  IntegrationCredentials,
  VendorClientDeps,
  VendorResponse,
  WriteContext,
} from './vendor-call.js';
import {
  assertSameOrigin,
  networkReason,
  oauthErrorCode,
  parseTokenResponse,
  profileOf,
  withThrottleDelay,
} from './vendor-answers.js';

/** Idempotency keys travel as a header and land in vendor logs: identifiers only, bounded. */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:/+=-]{8,255}$/;
const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;

interface RawRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export class VendorClient {
  readonly tokens: TokenManager;
  /** Per-integration https agents (trust, client certificate, TLS 1.2 floor); forget() on revocation. */
  readonly agents = new VendorAgents();

  constructor(private readonly deps: VendorClientDeps) {
    this.tokens = new TokenManager((integrationId) => this.requestToken(integrationId));
  }

  /** Requests that passed the revocation gate and have not finished, per integration. */
  private readonly inflight = new Map<string, Set<Promise<unknown>>>();

  /** Drops every token and connection of an integration (revocation, restore). */
  forget(integrationId: string): void {
    this.tokens.forget(integrationId);
    this.agents.forget(integrationId);
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
    const token = this.tokens.peek(integrationId);
    this.forget(integrationId);
    if (!token || !this.deps.revocationTarget) return undefined;
    const target = await this.deps.revocationTarget(integrationId);
    if (!target) return undefined;
    const request = await revocationRequest(target.cred, token);
    const res = await this.send(
      target.cred,
      { correlationId: randomUUID(), purpose: 'auth.revoke' },
      { method: 'POST', url: new URL(target.endpoint), headers: request.headers, body: request.body },
      { ungated: true },
    );
    return res.status === 200;
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
   * POST a new FHIR resource with an Idempotency-Key: a retry with the same key returns the first
   * result and creates nothing more (DESIGN §4 invariant 9). A non-2xx answer is a classified error.
   */
  async create(
    integrationId: string,
    resourceType: string,
    resource: Record<string, unknown>,
    ctx: WriteContext,
  ): Promise<VendorResponse> {
    if (!RESOURCE_TYPE.test(resourceType))
      throw new InvalidArgumentError('resourceType', 'expected a FHIR resource type name');
    return this.write(integrationId, ctx, 'POST', resourceType, resource);
  }

  /** PUT (update or conditional create) a FHIR resource by id, with an Idempotency-Key and optional If-Match. */
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
    return this.write(integrationId, ctx, 'PUT', `${resourceType}/${id}`, resource, ctx.ifMatch);
  }

  private async write(
    integrationId: string,
    ctx: WriteContext,
    method: 'POST' | 'PUT',
    relative: string,
    resource: Record<string, unknown>,
    ifMatch?: string,
  ): Promise<VendorResponse> {
    if (!IDEMPOTENCY_KEY.test(ctx.idempotencyKey))
      throw new InvalidArgumentError('idempotencyKey', 'use 8-255 letters, digits and . _ : / + = -');
    const cred = await this.deps.credentials(integrationId);
    const url = `${cred.baseUrl.replace(/\/$/, '')}/${relative}`;
    const headers: Record<string, string> = {
      accept: 'application/fhir+json',
      'content-type': 'application/fhir+json',
      'idempotency-key': ctx.idempotencyKey,
      ...(ifMatch ? { 'if-match': ifMatch } : {}),
    };
    const res = await this.authorized(integrationId, ctx, url, { method, headers, body: JSON.stringify(resource) });
    // send() hands a POST's 400 back (token endpoints answer 400 for OAuth errors); a FHIR write's is an error.
    if (res.status >= 400) throw new VendorHttpError(res.status, method, safePath(new URL(url)));
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
  ): Promise<VendorResponse> {
    const cred = await this.deps.credentials(integrationId);
    const target = new URL(url);
    assertTransportAllowed(target);
    assertSameOrigin(target, cred.baseUrl);
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
      const token = await this.tokens.accessToken(integrationId);
      const res = await this.send(cred, ctx, {
        method: req.method,
        url: target,
        headers: { ...headers, authorization: `Bearer ${token}` },
        body: req.body,
      });
      if (res.status !== 401) return res;
      this.tokens.invalidate(integrationId, token);
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
  ): Promise<{ accessToken: string; expiresInSeconds: number; scope: string }> {
    const cred = await this.deps.credentials(integrationId);
    // A fresh client authentication (a new assertion and jti) for every request, retries included.
    const request = await tokenRequest(cred);
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

  /** One HTTP exchange, audited. Non-2xx other than 401 becomes a classified VendorHttpError. */
  private async send(
    cred: IntegrationCredentials,
    ctx: CallContext,
    req: RawRequest,
    opts: { ungated?: boolean } = {},
  ): Promise<VendorResponse> {
    assertTransportAllowed(req.url);
    const path = safePath(req.url);
    const started = Date.now();
    let status = 0;
    let bytes = 0;
    let failure: EhrError | undefined;
    let admission: ReturnType<CircuitBreakers['admit']> | undefined;
    try {
      if (this.deps.gate && !opts.ungated) {
        const state = await this.deps.gate(cred.integrationId);
        if (cred.generation !== undefined && state.generation !== cred.generation) {
          this.forget(cred.integrationId);
          throw new VendorAuthError(
            cred.integrationId,
            'credentials changed while in use; retrying with the current generation',
            true,
          );
        }
      }
      // Revocation calls bypass the breaker: telling the vendor to drop a token must always be tried.
      if (this.deps.breaker && !opts.ungated) admission = this.deps.breaker.admit(cred.integrationId, cred.tenantId);
      const headers = { ...req.headers, 'x-correlation-id': ctx.correlationId };
      const signal = AbortSignal.timeout(this.deps.timeoutMs);
      // https goes through the integration's agent (its trust, client certificate and TLS floor);
      // plain http only ever reaches here for loopback (the sandbox).
      // No await between the gate and registering the exchange: a revocation either sees it in flight or it
      // saw the revocation.
      const exchange =
        req.url.protocol === 'https:'
          ? httpsExchange(req.url, {
              method: req.method,
              headers,
              body: req.body,
              agent: this.agents.agentFor(cred.integrationId, cred.tls),
              signal,
            })
          : fetch(req.url, { method: req.method, headers, body: req.body, redirect: 'error', signal });
      const res = await this.track(cred.integrationId, exchange);
      status = res.status;
      if (!res.ok && res.status !== 401 && !(req.method === 'POST' && res.status === 400)) {
        await res.body?.cancel().catch(() => undefined);
        throw withThrottleDelay(errorForStatus(res, req.method, path), cred.vendor);
      }
      const body = await readBodyCapped(res, this.deps.maxResponseBytes, path);
      bytes = body.byteLength;
      return { status: res.status, headers: res.headers, body };
    } catch (err) {
      const tlsCode = err instanceof EhrError ? undefined : tlsFailureCode(err);
      failure =
        err instanceof EhrError
          ? err
          : tlsCode
            ? new VendorTlsError(req.method, path, tlsCode)
            : new VendorNetworkError(req.method, path, networkReason(err));
      throw failure;
    } finally {
      admission?.done(failure);
      await this.deps.audit({
        actor: this.deps.actor,
        action:
          ctx.purpose === 'auth.token'
            ? 'vendor.token_request'
            : ctx.purpose === 'auth.revoke'
              ? 'vendor.token_revocation'
              : 'vendor.call',
        outcome: failure || status >= 400 ? 'failure' : 'success',
        tenantId: cred.tenantId,
        integrationId: cred.integrationId,
        correlationId: ctx.correlationId,
        details: {
          vendor: cred.vendor,
          method: req.method,
          path,
          status,
          bytes,
          durationMs: Date.now() - started,
          purpose: ctx.purpose,
          ...(failure ? { errorCode: failure.code } : {}),
        },
      });
    }
  }
}
