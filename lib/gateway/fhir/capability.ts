/**
 * The gateway's CapabilityStatement (`GET [base]/metadata`): only what lib/gateway/fhir/handler.ts and
 * write-handler.ts implement — read and search-type on every type the store holds, with the search parameters
 * lib/gateway/fhir/search-params.ts parses, and `$everything` on Patient; create, update and patch (JSON Patch) on
 * the types the built-in write policy lets the organisation's systems write (lib/writeback/authority.ts; an
 * integration's own policy decides each request) — and the SMART security extension naming the gateway's token
 * endpoint. No PHI; the same for every caller.
 */
import type { ResourceType } from '../../domain.js';
import { RESOURCE_TYPES } from '../../domain.js';
import { defaultWritePolicy } from '../../writeback/authority.js';
import { MAX_COUNT, searchParamsOf } from './search-params.js';

/** The interactions advertised for a type: reads everywhere, writes where the default write policy allows them. */
export function advertisedInteractions(type: ResourceType): string[] {
  const policy = defaultWritePolicy(type);
  return ['read', 'search-type', ...(policy.create ? ['create'] : []), ...(policy.update ? ['update', 'patch'] : [])];
}

const SEARCH_PARAM_TYPES: Readonly<Record<string, { type: string; documentation: string }>> = {
  _id: { type: 'token', documentation: 'Comma-separated resource ids (any of them).' },
  _lastUpdated: { type: 'date', documentation: 'Prefixes eq (default), gt, ge, lt, le; repeatable (all hold).' },
  patient: { type: 'reference', documentation: 'Comma-separated patient ids or Patient/<id> references.' },
};

/** The token URL by default: `/fhir` at the end of the base replaced by `/auth/token`. */
export function defaultTokenUrl(baseUrl: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  return base.endsWith('/fhir') ? `${base.slice(0, -'/fhir'.length)}/auth/token` : `${base}/auth/token`;
}

export function capabilityStatement(options: { baseUrl: string; tokenUrl?: string }): Record<string, unknown> {
  const tokenUrl = options.tokenUrl ?? defaultTokenUrl(options.baseUrl);
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-12-05',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    patchFormat: ['application/json-patch+json'],
    software: { name: 'ehr-connectors mediation gateway' },
    implementation: { description: 'Scoped, audited reads of the encrypted store', url: options.baseUrl },
    rest: [
      {
        mode: 'server',
        documentation:
          `Reads across every integration of the consumer's tenant; when two hold the same resource, the newest ` +
          `lastUpdated wins, then the lowest integration id. Pages hold at most ${MAX_COUNT} entries. Writes are ` +
          `stored locally and sent to the EHR by write-back; the integration's write policy decides which elements ` +
          `this side may change (a refused element is named in a 422 OperationOutcome). No deletes.`,
        security: {
          service: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                  code: 'SMART-on-FHIR',
                },
              ],
            },
          ],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: tokenUrl }],
            },
          ],
        },
        resource: RESOURCE_TYPES.map((type) => ({
          type,
          interaction: advertisedInteractions(type).map((code) => ({ code })),
          ...(advertisedInteractions(type).includes('update') ? { versioning: 'versioned', updateCreate: false } : {}),
          searchParam: searchParamsOf(type).map((name) => ({ name, ...SEARCH_PARAM_TYPES[name] })),
          ...(type === 'Patient'
            ? {
                operation: [
                  { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
                ],
              }
            : {}),
        })),
      },
    ],
  };
}
