/**
 * A write's body, checked before anything is looked up or stored: the content type, JSON, the resource type and
 * (update) the id, and an RFC 6902 JSON Patch applied with `fast-json-patch` (operations validated; `__proto__` and
 * `constructor` paths refused). Every refusal is a WriteRefused naming the problem, never the content.
 */
import { JsonPatchError, applyPatch } from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { GatewayResponse } from '../access.js';
import type { IssueCode } from './responses.js';
import { operationOutcome } from './responses.js';

export interface OutcomeIssue {
  severity: 'error';
  code: string;
  diagnostics: string;
  expression?: string[];
}

/** A write refused before anything is stored; `reason` is the audit event's stable code. */
export class WriteRefused extends Error {
  readonly outcome: Record<string, unknown>;
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    diagnostics: string,
    readonly reason: string,
    readonly headers: GatewayResponse['headers'] = {},
    issues?: readonly OutcomeIssue[],
    /** Identifiers and element names only. */
    readonly auditExtra: Record<string, unknown> = {},
  ) {
    super(diagnostics);
    this.outcome = issues ? { resourceType: 'OperationOutcome', issue: issues } : operationOutcome(code, diagnostics);
  }
}

type Resource = Record<string, unknown>;

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function parseJson(body: string | undefined): unknown {
  if (body === undefined || body.trim() === '') throw new WriteRefused(400, 'invalid', 'the body is empty', 'body');
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new WriteRefused(400, 'invalid', 'the body is not well-formed JSON', 'body');
  }
}

/** The resource of a POST or PUT: FHIR JSON of the URL's type (and id, for PUT). */
export function resourceBody(
  body: string | undefined,
  contentType: string | undefined,
  type: string,
  id?: string,
): Resource {
  const media = mediaType(contentType);
  if (media !== 'application/fhir+json' && media !== 'application/json')
    throw new WriteRefused(415, 'not-supported', 'send application/fhir+json', 'content-type');
  const value = parseJson(body);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new WriteRefused(400, 'invalid', 'the body is not a FHIR resource (a JSON object)', 'body');
  const resource = value as Resource;
  if (resource.resourceType !== type)
    throw new WriteRefused(400, 'invalid', `resourceType must be ${type}`, 'resource-type');
  if (id !== undefined && resource.id !== id)
    throw new WriteRefused(400, 'invalid', `the body's id must be the URL's id (${id})`, 'id');
  return resource;
}

/** The operations of a PATCH (application/json-patch+json). */
export function patchBody(body: string | undefined, contentType: string | undefined): Operation[] {
  if (mediaType(contentType) !== 'application/json-patch+json')
    throw new WriteRefused(415, 'not-supported', 'PATCH takes application/json-patch+json (RFC 6902)', 'content-type');
  const value = parseJson(body);
  if (!Array.isArray(value) || value.length === 0 || value.some((op) => typeof op !== 'object' || op === null))
    throw new WriteRefused(400, 'invalid', 'a JSON Patch is a non-empty array of operations', 'patch');
  return value as Operation[];
}

/** The patch applied to a copy of `document`; the resource type and id cannot be patched. */
export function applyJsonPatch(document: Resource, operations: Operation[]): Resource {
  let patched: Resource;
  try {
    patched = applyPatch(structuredClone(document), operations, true, true).newDocument;
  } catch (err) {
    // The library's message embeds the operation and the document: only its error name leaves.
    const name = err instanceof JsonPatchError ? err.name : 'INVALID_PATCH';
    const status = name === 'TEST_OPERATION_FAILED' ? 409 : 400;
    throw new WriteRefused(status, 'invalid', `the JSON Patch does not apply: ${name}`, 'patch', {}, undefined, {
      patchError: name,
    });
  }
  if (typeof patched !== 'object' || patched === null || Array.isArray(patched))
    throw new WriteRefused(400, 'invalid', 'the patched document is not a resource', 'patch');
  if (patched.resourceType !== document.resourceType || patched.id !== document.id)
    throw new WriteRefused(400, 'invalid', 'a patch may not change resourceType or id', 'patch');
  return patched;
}
