/**
 * What the FHIR read side answers: FHIR JSON bodies (a resource, a searchset Bundle, an OperationOutcome) with the
 * headers every answer carries. Diagnostics name the request's problem, never stored content.
 */
import type { GatewayResponse } from '../access.js';

export type IssueCode =
  'not-found' | 'not-supported' | 'invalid' | 'forbidden' | 'transient' | 'exception' | 'conflict' | 'business-rule';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export function fhirHeaders(correlationId: string, extra: Record<string, string> = {}): Record<string, string> {
  // PHI: never kept by a cache on the way.
  return { 'content-type': FHIR_JSON, 'cache-control': 'no-store', 'x-correlation-id': correlationId, ...extra };
}

export function operationOutcome(code: IssueCode, diagnostics: string): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: code === 'transient' ? 'warning' : 'error', code, diagnostics }],
  };
}

export function outcomeResponse(
  correlationId: string,
  status: number,
  code: IssueCode,
  diagnostics: string,
  extraHeaders: Record<string, string> = {},
): GatewayResponse {
  return { status, headers: fhirHeaders(correlationId, extraHeaders), body: operationOutcome(code, diagnostics) };
}

export interface BundleEntryInput {
  resourceType: string;
  resourceId: string;
  resource: Record<string, unknown>;
}

export function searchsetBundle(
  baseUrl: string,
  links: { self: string; next?: string },
  entries: readonly BundleEntryInput[],
): Record<string, unknown> {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    link: [
      { relation: 'self', url: links.self },
      ...(links.next !== undefined ? [{ relation: 'next', url: links.next }] : []),
    ],
    entry: entries.map((e) => ({
      fullUrl: `${baseUrl}/${e.resourceType}/${e.resourceId}`,
      resource: e.resource,
      search: { mode: 'match' },
    })),
  };
}

/** A type name fit to repeat in a diagnostic (what the caller sent, when it looks like a type), else a placeholder. */
export function echoable(value: string): string {
  return /^[A-Za-z]{1,64}$/.test(value) ? value : '(not a resource type name)';
}
