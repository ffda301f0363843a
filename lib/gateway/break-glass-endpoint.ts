/**
 * `POST /break-glass` on the gateway (issue 12 item 4): a consumer asks for break-glass itself, with its own access
 * token (checked by authorizeRequest exactly as for /fhir/). The body is JSON
 * `{ "scope": "system/Observation.rs", "reasonCode": "emergency-care", "reason": "...", "minutes": 30 }` and nothing
 * else: the grant is for the token's consumer only (a body naming a consumer is refused), requested by
 * `consumer:<id>`, checked as the CLI's (checkBreakGlassRequest, EHR_BREAK_GLASS_MAX_MINUTES). The grant and its
 * review workflow come from `request` (the gateway process wires client/break-glass-client.ts `requestBreakGlass`:
 * the grant is revoked again if its review cannot start). Bad input is a 400 GatewayRefusalError whose reason names
 * the field (the gateway audits it); the reason text goes to the grant's row only, never to a log or an event.
 */
import type { AuditContext } from '../audit/chain.js';
import { GatewayRefusalError, InvalidArgumentError } from '../errors/index.js';
import type { GatewayAccess, GatewayResponse } from './access.js';
import type { BreakGlassRecord, BreakGlassRequest } from './break-glass.js';
import { checkBreakGlassRequest } from './break-glass.js';

export type RequestBreakGlass = (req: BreakGlassRequest, audit: AuditContext) => Promise<BreakGlassRecord>;

export interface BreakGlassEndpointDeps {
  request: RequestBreakGlass;
  /** EHR_BREAK_GLASS_MAX_MINUTES. */
  maxMinutes: number;
}

const FIELDS = ['scope', 'reasonCode', 'reason', 'minutes'] as const;
/** checkBreakGlassRequest names CLI options; the body's fields are these. */
const FIELD_OF_OPTION: Record<string, string> = {
  '--scope': 'scope',
  '--reason-code': 'reasonCode',
  '--reason': 'reason',
  '--minutes': 'minutes',
  '--consumer': 'consumer',
  '--requested-by': 'consumer',
};

/** The requester recorded on a grant a consumer asked for itself (never able to review it: four eyes). */
export function consumerRequester(consumerId: string): string {
  return `consumer:${consumerId}`;
}

function bad(access: GatewayAccess, what: string): GatewayRefusalError {
  return new GatewayRefusalError(
    400,
    'invalid_request',
    `break-glass-invalid-${what}`,
    access.consumerId,
    access.tenantId,
  );
}

/** The body as the four fields, or a 400 naming the first one that is missing, mistyped or unknown. */
export function parseBreakGlassBody(
  access: GatewayAccess,
  raw: unknown,
): Omit<BreakGlassRequest, 'consumerId' | 'requestedBy'> {
  if (typeof raw !== 'string' || raw.trim() === '') throw bad(access, 'body');
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw bad(access, 'json');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad(access, 'body');
  const fields = body as Record<string, unknown>;
  const unknownField = Object.keys(fields).find((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknownField !== undefined) throw bad(access, 'field');
  const { scope, reasonCode, reason, minutes } = fields;
  if (typeof scope !== 'string') throw bad(access, 'scope');
  if (typeof reasonCode !== 'string') throw bad(access, 'reasonCode');
  if (typeof reason !== 'string') throw bad(access, 'reason');
  if (typeof minutes !== 'number') throw bad(access, 'minutes');
  return { scope, reasonCode, reason, minutes };
}

/** Checks the body, then records the grant and starts its review; 201 with the grant's id, scopes and expiry. */
export async function handleBreakGlassRequest(
  deps: BreakGlassEndpointDeps,
  access: GatewayAccess,
  rawBody: unknown,
  audit: AuditContext,
): Promise<GatewayResponse> {
  const req: BreakGlassRequest = {
    ...parseBreakGlassBody(access, rawBody),
    consumerId: access.consumerId,
    requestedBy: consumerRequester(access.consumerId),
  };
  try {
    checkBreakGlassRequest(req, deps.maxMinutes);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw bad(access, FIELD_OF_OPTION[err.argument] ?? 'request');
    throw err;
  }
  const grant = await deps.request(req, audit);
  return {
    status: 201,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: {
      id: grant.id,
      consumerId: grant.consumerId,
      scopes: grant.scopes,
      reasonCode: grant.reasonCode,
      expiresAt: grant.expiresAt.toISOString(),
      reviewWorkflowId: grant.reviewWorkflowId,
    },
  };
}
