/**
 * Audit and answer of the gateway's refusals. Every refusal is audited (`gateway.token.refused` at the token
 * endpoint, `gateway.request.refused` elsewhere) with its status, reason code and the consumer when known — never
 * the token, the assertion or the request's path (which can name a patient). A flood of the same refusal (same
 * route, proven consumer, and reason) is audited once per window with the count of those left out
 * (RefusalAuditLimiter), so a caller cannot fill the chain; callers who proved nothing share one window per
 * reason, whatever client id they claim. The caller is told RFC 6749 / 6750 codes only.
 */
import type { AuditContext } from '../../audit/chain.js';
import { recordAuditEvent } from '../../audit/chain.js';
import type { RefusalAuditLimiter } from '../../audit/refusal-limiter.js';
import type { GatewayRefusalError } from '../../errors/index.js';
import type { Pool } from '../../store/pool.js';

/** Where a refusal happened; `break-glass` is a consumer's own POST /break-glass (its events name the route). */
export type GatewayRoute = 'token' | 'fhir' | 'break-glass';

/** Audits one refusal (or counts it, inside the limiter's window); true when a row was written. */
export async function auditGatewayRefusal(
  pool: Pool,
  limiter: RefusalAuditLimiter,
  route: GatewayRoute,
  err: GatewayRefusalError,
  ctx: AuditContext,
  claimedConsumerId?: string,
): Promise<boolean> {
  // Keyed by the consumer only when it is proven (a verified token or a registered client): a claimed id is the
  // caller's to vary, and must not open a window of its own per request.
  const suppressedBefore = limiter.admit(`${route}\0${err.consumerId ?? '-'}\0${err.reason}`);
  if (suppressedBefore === undefined) return false;
  await recordAuditEvent(pool, {
    ...ctx,
    action: route === 'token' ? 'gateway.token.refused' : 'gateway.request.refused',
    outcome: 'failure',
    tenantId: err.tenantId ?? null,
    details: {
      status: err.status,
      reason: err.reason,
      ...(route === 'break-glass' ? { route } : {}),
      ...(err.consumerId ? { consumerId: err.consumerId } : claimedConsumerId ? { claimedConsumerId } : {}),
      ...(suppressedBefore > 0 ? { suppressedBefore } : {}),
    },
  });
  return true;
}

const OUTCOME_CODES: Record<number, string> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  429: 'throttled',
  500: 'exception',
  501: 'not-supported',
  503: 'transient',
};

/** A generic FHIR OperationOutcome; `reasonCode`, when given, is a code safe to tell (e.g. incident-freeze). */
export function operationOutcome(status: number, text: string, reasonCode?: string): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: OUTCOME_CODES[status] ?? 'processing',
        ...(reasonCode
          ? { details: { coding: [{ system: 'urn:ehr-connectors:gateway:reason', code: reasonCode }], text } }
          : { diagnostics: text }),
      },
    ],
  };
}
