/**
 * Fault injection for FHIR search responses: the next N searches (optionally of one type) misbehave.
 */
import { z } from 'zod';
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';

export const FAULT_KINDS = ['malformed-json', 'wrong-resource-type', 'truncated-body', 'status'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FaultRequest = z
  .object({
    kind: z.enum(FAULT_KINDS),
    status: z.number().int().min(400).max(599).optional(),
    retryAfterSeconds: z.number().int().min(0).max(86_400).optional(),
    resourceType: z.enum(RESOURCE_TYPES).optional(),
    times: z.number().int().min(1).max(1_000_000).default(1),
  })
  .strict();
export type FaultRequest = z.infer<typeof FaultRequest>;

export interface Fault {
  kind: FaultKind;
  status: number;
  retryAfterSeconds?: number;
  resourceType?: ResourceType;
  remaining: number;
}

export class FaultQueue {
  private faults: Fault[] = [];

  add(req: FaultRequest): Fault {
    const fault: Fault = {
      kind: req.kind,
      status: req.status ?? 500,
      remaining: req.times,
      ...(req.retryAfterSeconds !== undefined ? { retryAfterSeconds: req.retryAfterSeconds } : {}),
      ...(req.resourceType !== undefined ? { resourceType: req.resourceType } : {}),
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

  /** Consumes one use of the first fault that applies to a search of `type`. */
  take(type: ResourceType): Fault | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && (f.resourceType === undefined || f.resourceType === type));
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

function wrongTypeFor(type: ResourceType): ResourceType {
  return type === 'Patient' ? 'Observation' : 'Patient';
}

/** The misbehaving response for a search whose correct answer was `bundle`. */
export function faultResponse(fault: Fault, type: ResourceType, bundle: { entry: Array<{ resource: Record<string, unknown> }> }): RawResponse {
  switch (fault.kind) {
    case 'malformed-json': {
      const json = JSON.stringify(bundle);
      return { status: 200, headers: { 'content-type': FHIR_JSON }, body: `${json.slice(0, -1)},"entry":[{"resource":}` };
    }
    case 'wrong-resource-type': {
      const wrong = wrongTypeFor(type);
      const entry =
        bundle.entry.length > 0
          ? bundle.entry.map((e) => ({ ...e, resource: { ...e.resource, resourceType: wrong } }))
          : [{ fullUrl: `urn:uuid:00000000-0000-4000-8000-000000000000`, resource: { resourceType: wrong, id: 'sandbox-fault' }, search: { mode: 'match' } }];
      return { status: 200, headers: { 'content-type': FHIR_JSON }, body: JSON.stringify({ ...bundle, entry }) };
    }
    case 'truncated-body': {
      const full = Buffer.from(JSON.stringify(bundle), 'utf8');
      const half = full.subarray(0, Math.floor(full.length / 2));
      return { status: 200, headers: { 'content-type': FHIR_JSON, 'content-length': String(half.length) }, body: half };
    }
    case 'status': {
      const headers: Record<string, string> = { 'content-type': FHIR_JSON };
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      const code = fault.status === 429 ? 'throttled' : fault.status >= 500 ? 'transient' : 'processing';
      return {
        status: fault.status,
        headers,
        body: JSON.stringify(operationOutcome(code, `sandbox injected HTTP ${fault.status}`)),
      };
    }
  }
}

export function operationOutcome(code: string, diagnostics: string, severity: 'error' | 'fatal' = 'error'): Record<string, unknown> {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}
