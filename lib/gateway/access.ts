/**
 * What the mediation gateway knows about one request once its token is verified: which consumer asks, for which
 * tenant, under which purpose and scopes. The authorization side (consumers, tokens, break-glass) produces it; the
 * FHIR read side and batch exports consume it. Identifiers only: no PHI.
 */
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';

/** One SMART v2 scope a consumer holds, e.g. `system/Observation.rs` (read and search) or `system/*.r`. */
export interface GatewayScope {
  context: 'system';
  /** A resource type, or every type the store holds. */
  resourceType: ResourceType | '*';
  read: boolean;
  search: boolean;
  /** `c`: create through the gateway (issue 13); absent: not granted. */
  create?: boolean;
  /** `u`: update and patch through the gateway (issue 13); absent: not granted. */
  update?: boolean;
}

/** A time-boxed grant beyond a consumer's scopes (break-glass); every access under it carries its id. */
export interface BreakGlassGrant {
  id: string;
  consumerId: string;
  scopes: readonly GatewayScope[];
  reasonCode: string;
  expiresAt: Date;
}

export interface GatewayAccess {
  tenantId: string;
  consumerId: string;
  purpose: Purpose;
  /** The scopes of the token (never wider than the consumer's registered scopes). */
  scopes: readonly GatewayScope[];
  /** Active break-glass grants of the consumer at the time of the request (usually none). */
  breakGlass: readonly BreakGlassGrant[];
  /** Ties the request's audit events together (also sent back as X-Correlation-Id). */
  correlationId: string;
}

/** What a gateway handler answers; the HTTP layer writes it out (FHIR JSON bodies). */
export interface GatewayResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}
