/**
 * The gateway's CapabilityStatement (`GET [base]/metadata`): only what lib/gateway/fhir/handler.ts implements —
 * read and search-type on every type the store holds, with the search parameters lib/gateway/fhir/search-params.ts
 * parses, and `$everything` on Patient — and the SMART security extension naming the gateway's token endpoint.
 * No PHI; the same for every caller.
 */
import { RESOURCE_TYPES } from '../../domain.js';
import { MAX_COUNT, searchParamsOf } from './search-params.js';

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
    software: { name: 'ehr-connectors mediation gateway' },
    implementation: { description: 'Scoped, audited reads of the encrypted store', url: options.baseUrl },
    rest: [
      {
        mode: 'server',
        documentation:
          `Reads across every integration of the consumer's tenant; when two hold the same resource, the newest ` +
          `lastUpdated wins, then the lowest integration id. Pages hold at most ${MAX_COUNT} entries.`,
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
          interaction: [{ code: 'read' }, { code: 'search-type' }],
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
