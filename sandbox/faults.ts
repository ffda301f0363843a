/**
 * Fault injection on command: the next N FHIR searches (optionally of one type) or token requests
 * misbehave the way real vendors do — error statuses and 429 storms (Retry-After in seconds, as an
 * HTTP-date, or absent), slow answers and hangs, broken bodies, a token expired between two pages,
 * a 403 on a granted type, a next link to another host, and an assertion reported as replayed.
 */
import { z } from 'zod';
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';

/** Faults of FHIR searches. */
export const SEARCH_FAULT_KINDS = [
  'malformed-json',
  'wrong-resource-type',
  'truncated-body',
  'status',
  'slow',
  'hang',
  'expire-token',
  'scope-violation',
  'foreign-next-link',
] as const;
/** Faults of the token endpoint. */
export const TOKEN_FAULT_KINDS = ['jti-replay'] as const;
export const FAULT_KINDS = [...SEARCH_FAULT_KINDS, ...TOKEN_FAULT_KINDS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type SearchFaultKind = (typeof SEARCH_FAULT_KINDS)[number];

export const FaultRequest = z
  .object({
    kind: z.enum(FAULT_KINDS),
    status: z.number().int().min(400).max(599).optional(),
    retryAfterSeconds: z.number().int().min(0).max(86_400).optional(),
    /** Send Retry-After as an HTTP-date (now + retryAfterSeconds) instead of delta-seconds. */
    retryAfterAsDate: z.boolean().optional(),
    /** 'slow': how long to wait before answering. */
    delayMs: z.number().int().min(0).max(600_000).optional(),
    /** 'foreign-next-link': the host the next link points to (default 127.0.0.2, same scheme and port). */
    nextHost: z
      .string()
      .regex(/^[A-Za-z0-9.-]{1,253}$/)
      .optional(),
    resourceType: z.enum(RESOURCE_TYPES).optional(),
    /** Applies to the type's `_history` instead of its searches (kind status only). */
    history: z.boolean().optional(),
    times: z.number().int().min(1).max(1_000_000).default(1),
  })
  .strict()
  .refine((f) => f.kind !== 'status' || f.status === undefined || f.status >= 400, 'status must be 4xx or 5xx')
  .refine(
    (f) =>
      f.kind === 'status' ||
      (f.status === undefined && f.retryAfterSeconds === undefined && f.retryAfterAsDate === undefined),
    'status and Retry-After belong to kind status',
  )
  .refine((f) => !f.retryAfterAsDate || f.retryAfterSeconds !== undefined, 'retryAfterAsDate needs retryAfterSeconds')
  .refine((f) => !f.history || f.kind === 'status', 'a history fault is of kind status')
  .refine(
    (f) => f.kind !== 'jti-replay' || f.resourceType === undefined,
    'jti-replay is a token-endpoint fault: no resourceType',
  );
export type FaultRequest = z.infer<typeof FaultRequest>;

export interface Fault {
  kind: FaultKind;
  status: number;
  retryAfterSeconds?: number;
  retryAfterAsDate?: boolean;
  delayMs?: number;
  nextHost?: string;
  resourceType?: ResourceType;
  history?: true;
  remaining: number;
}

export type SearchFault = Fault & { kind: SearchFaultKind };

const isTokenFault = (kind: FaultKind): boolean => (TOKEN_FAULT_KINDS as readonly string[]).includes(kind);

export class FaultQueue {
  private faults: Fault[] = [];

  add(req: FaultRequest): Fault {
    const fault: Fault = {
      kind: req.kind,
      status: req.status ?? (req.kind === 'scope-violation' ? 403 : 500),
      remaining: req.times,
      ...(req.retryAfterSeconds !== undefined ? { retryAfterSeconds: req.retryAfterSeconds } : {}),
      ...(req.retryAfterAsDate ? { retryAfterAsDate: true } : {}),
      ...(req.delayMs !== undefined ? { delayMs: req.delayMs } : {}),
      ...(req.nextHost !== undefined ? { nextHost: req.nextHost } : {}),
      ...(req.resourceType !== undefined ? { resourceType: req.resourceType } : {}),
      ...(req.history ? { history: true as const } : {}),
    };
    this.faults.push(fault);
    return fault;
  }

  clear(): number {
    const n = this.faults.length;
    this.faults = [];
    return n;
  }

  pending(): Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  /** Consumes one use of the first search fault that applies to a search of `type`. */
  take(type: ResourceType): SearchFault | undefined {
    return this.consume(
      (f) => !isTokenFault(f.kind) && !f.history && (f.resourceType === undefined || f.resourceType === type),
    ) as SearchFault | undefined;
  }

  /** Consumes one use of the first fault of the type's `_history`. */
  takeHistory(type: ResourceType): SearchFault | undefined {
    return this.consume((f) => f.history === true && (f.resourceType === undefined || f.resourceType === type)) as
      SearchFault | undefined;
  }

  /**
   * Consumes one use of the first unavailability fault (a 429 or 5xx status) of `type`, for a count
   * (`_summary=count`): a vendor that is down answers every request so, while a malformed or truncated page, a
   * foreign next link or an expired token concern pages only.
   */
  takeUnavailable(type: ResourceType): SearchFault | undefined {
    return this.consume(
      (f) =>
        f.kind === 'status' &&
        !f.history &&
        (f.status === undefined || f.status === 429 || f.status >= 500) &&
        (f.resourceType === undefined || f.resourceType === type),
    ) as SearchFault | undefined;
  }

  /** Consumes one use of the first token-endpoint fault. */
  takeToken(): Fault | undefined {
    return this.consume((f) => isTokenFault(f.kind));
  }

  private consume(applies: (f: Fault) => boolean): Fault | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && applies(f));
    if (!fault) return undefined;
    fault.remaining--;
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return fault;
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export interface SearchBundle {
  link: Array<{ relation: string; url: string }>;
  entry: Array<{ resource: Record<string, unknown> }>;
}

function wrongTypeFor(type: ResourceType): ResourceType {
  return type === 'Patient' ? 'Observation' : 'Patient';
}

/** RFC 9110 IMF-fixdate, whole seconds rounded up so the wait is never shorter than asked. */
export function httpDate(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toUTCString();
}

/**
 * The misbehaving response for a search whose correct answer was `bundle`, for the faults that
 * replace the response. 'slow', 'hang' and 'expire-token' change timing or state, not the body:
 * they answer undefined here and fhir-routes.ts applies them.
 */
export function faultResponse(
  fault: SearchFault,
  type: ResourceType,
  bundle: SearchBundle,
  nowMs = Date.now(),
): RawResponse | undefined {
  switch (fault.kind) {
    case 'malformed-json': {
      const json = JSON.stringify(bundle);
      return {
        status: 200,
        headers: { 'content-type': FHIR_JSON },
        body: `${json.slice(0, -1)},"entry":[{"resource":}`,
      };
    }
    case 'wrong-resource-type': {
      const wrong = wrongTypeFor(type);
      const entry =
        bundle.entry.length > 0
          ? bundle.entry.map((e) => ({ ...e, resource: { ...e.resource, resourceType: wrong } }))
          : [
              {
                fullUrl: `urn:uuid:00000000-0000-4000-8000-000000000000`,
                resource: { resourceType: wrong, id: 'sandbox-fault' },
                search: { mode: 'match' },
              },
            ];
      return { status: 200, headers: { 'content-type': FHIR_JSON }, body: JSON.stringify({ ...bundle, entry }) };
    }
    case 'truncated-body': {
      const full = Buffer.from(JSON.stringify(bundle), 'utf8');
      const half = full.subarray(0, Math.floor(full.length / 2));
      return { status: 200, headers: { 'content-type': FHIR_JSON, 'content-length': String(half.length) }, body: half };
    }
    case 'status': {
      const headers: Record<string, string> = { 'content-type': FHIR_JSON };
      if (fault.retryAfterSeconds !== undefined) {
        headers['retry-after'] = fault.retryAfterAsDate
          ? httpDate(nowMs + fault.retryAfterSeconds * 1000)
          : String(fault.retryAfterSeconds);
      }
      const code = fault.status === 429 ? 'throttled' : fault.status >= 500 ? 'transient' : 'processing';
      return {
        status: fault.status,
        headers,
        body: JSON.stringify(operationOutcome(code, `sandbox injected HTTP ${fault.status}`)),
      };
    }
    case 'scope-violation':
      return {
        status: 403,
        headers: { 'content-type': FHIR_JSON },
        body: JSON.stringify(operationOutcome('forbidden', `access token lacks scope for ${type}`)),
      };
    case 'foreign-next-link': {
      const link = bundle.link.map((l) =>
        l.relation === 'next' ? { ...l, url: elsewhere(l.url, fault.nextHost ?? '127.0.0.2') } : l,
      );
      if (!link.some((l) => l.relation === 'next')) {
        const self = bundle.link.find((l) => l.relation === 'self');
        if (self) link.push({ relation: 'next', url: elsewhere(self.url, fault.nextHost ?? '127.0.0.2') });
      }
      return { status: 200, headers: { 'content-type': FHIR_JSON }, body: JSON.stringify({ ...bundle, link }) };
    }
    case 'slow':
    case 'hang':
    case 'expire-token':
      return undefined;
  }
}

function elsewhere(url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}

export function operationOutcome(
  code: string,
  diagnostics: string,
  severity: 'error' | 'fatal' = 'error',
): Record<string, unknown> {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}
