/**
 * One HTTP exchange of the vendor door (vendor-client.ts), audited: the revocation gate, the circuit
 * breaker, the TLS policy, a timeout, the response size cap (or, for a streamed body, an idle timeout and
 * the caller's consumer), a correlation id header, failures classified into retry classes, and one audit
 * event per call, success or failure. An audit write failure fails the call (fail closed).
 */
import { EhrError, VendorAuthError, VendorNetworkError, VendorTlsError } from '../errors/index.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import { assertTransportAllowed, errorForStatus, readBodyCapped, safePath } from './http-policy.js';
import { IdleTimeout } from './stream-body.js';
import type { VendorAgents } from './tls-options.js';
import { httpsExchange, tlsFailureCode } from './tls-options.js';
import type { CallContext, IntegrationCredentials, VendorClientDeps, VendorResponse } from './vendor-call.js';
import { networkReason, outcomeCodeOf, withThrottleDelay } from './vendor-answers.js';

/** An error answer read for its OperationOutcome code: enough for any outcome, small enough to never matter. */
const ERROR_BODY_BYTES = 64 * 1024;

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export interface SendOptions {
  /** Revocation calls only: past the revocation gate and the breaker. */
  ungated?: boolean;
  /** Read a refusal's body for its OperationOutcome issue code (Bulk Data kick-off and status). */
  outcomeOnError?: boolean;
  /** Hand a 2xx body to this consumer as a stream (no size cap, idle timeout); it returns the bytes it read. */
  stream?: (res: Response, idle: IdleTimeout) => Promise<number>;
  /** Stops the exchange (an activity's cancellation, forget()). */
  signal?: AbortSignal;
}

/** What of the vendor client an exchange uses. */
export interface ExchangeHost {
  deps: VendorClientDeps;
  agents: VendorAgents;
  /** Registers the exchange as in flight until its answer's headers arrive (revocation waits for it). */
  track<T>(integrationId: string, exchange: Promise<T>): Promise<T>;
  forget(integrationId: string): void;
}

/** Non-2xx other than 401 (and a POST's 400) becomes a classified VendorHttpError. */
export async function auditedExchange(
  host: ExchangeHost,
  cred: IntegrationCredentials,
  ctx: CallContext,
  req: RawRequest,
  opts: SendOptions,
): Promise<VendorResponse> {
  const { deps } = host;
  assertTransportAllowed(req.url);
  const path = safePath(req.url);
  const started = Date.now();
  let status = 0;
  let bytes = 0;
  let failure: EhrError | undefined;
  /** A streamed body's consumer failed on our side (e.g. the database): not the vendor's failure. */
  let consumerFailure: string | undefined;
  let admission: ReturnType<CircuitBreakers['admit']> | undefined;
  try {
    if (deps.gate && !opts.ungated) {
      const state = await deps.gate(cred.integrationId);
      if (cred.generation !== undefined && state.generation !== cred.generation) {
        host.forget(cred.integrationId);
        throw new VendorAuthError(
          cred.integrationId,
          'credentials changed while in use; retrying with the current generation',
          true,
        );
      }
    }
    // Revocation calls bypass the breaker: telling the vendor to drop a token must always be tried.
    if (deps.breaker && !opts.ungated) admission = deps.breaker.admit(cred.integrationId, cred.tenantId);
    const headers = { ...req.headers, 'x-correlation-id': ctx.correlationId };
    // A streamed body has an idle timeout (stream-body.ts) instead of one for the whole exchange.
    const idle = opts.stream ? new IdleTimeout(deps.timeoutMs) : undefined;
    const limit = idle ? idle.signal : AbortSignal.timeout(deps.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([limit, opts.signal]) : limit;
    idle?.arm();
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
            agent: host.agents.agentFor(cred.integrationId, cred.tls),
            signal,
          })
        : fetch(req.url, { method: req.method, headers, body: req.body, redirect: 'error', signal });
    const res = await host.track(cred.integrationId, exchange).finally(() => idle?.disarm());
    status = res.status;
    if (!res.ok && res.status !== 401 && !(req.method === 'POST' && res.status === 400)) {
      const outcome = opts.outcomeOnError ? await outcomeOf(res, path) : undefined;
      if (!opts.outcomeOnError) await res.body?.cancel().catch(() => undefined);
      throw withThrottleDelay(errorForStatus(res, req.method, path, outcome), cred.vendor);
    }
    if (opts.stream && idle && res.ok) {
      bytes = await opts.stream(res, idle).catch((err: unknown) => {
        if (!(err instanceof EhrError)) consumerFailure = 'UNCLASSIFIED';
        throw err;
      });
      return { status: res.status, headers: res.headers, body: Buffer.alloc(0) };
    }
    const body = await readBodyCapped(res, deps.maxResponseBytes, path);
    bytes = body.byteLength;
    return { status: res.status, headers: res.headers, body };
  } catch (err) {
    if (consumerFailure) throw err;
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
    await deps.audit({
      actor: deps.actor,
      action:
        ctx.purpose === 'auth.token'
          ? 'vendor.token_request'
          : ctx.purpose === 'auth.revoke'
            ? 'vendor.token_revocation'
            : 'vendor.call',
      outcome: failure || consumerFailure || status >= 400 ? 'failure' : 'success',
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
        ...(failure || consumerFailure ? { errorCode: failure?.code ?? consumerFailure } : {}),
      },
    });
  }
}

async function outcomeOf(res: Response, path: string): Promise<string | undefined> {
  const body = await readBodyCapped(res, ERROR_BODY_BYTES, path).catch(() => undefined);
  return body ? outcomeCodeOf(body) : undefined;
}
