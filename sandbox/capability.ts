/**
 * The CapabilityStatement (`[base]/metadata`), saying honestly what this personality serves: which
 * search parameters per type (and whether a search needs `patient`), `_sort`, `_history`, and the
 * Bulk Data `$export` levels.
 */
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import type { ExportLevel } from './read-paths.js';

const BULK = 'http://hl7.org/fhir/uv/bulkdata';
const EXPORT_DEFINITION: Record<ExportLevel, string> = {
  system: `${BULK}/OperationDefinition/export`,
  patient: `${BULK}/OperationDefinition/patient-export`,
  group: `${BULK}/OperationDefinition/group-export`,
};

function searchParams(ctx: SandboxContext, type: ResourceType): Array<Record<string, string>> {
  const reads = ctx.reads;
  const params: Array<Record<string, string>> = [
    { name: '_lastUpdated', type: 'date' },
    { name: '_id', type: 'token' },
    { name: '_count', type: 'number', documentation: `at most ${ctx.maxPageSize} per page` },
  ];
  if (type !== 'Patient') params.push({ name: 'patient', type: 'reference' });
  if (reads.sortLastUpdated) params.push({ name: '_sort', type: 'special', documentation: '_lastUpdated only' });
  return params;
}

function documentation(ctx: SandboxContext, type: ResourceType): string {
  const mode = ctx.reads.systemSearch;
  if (mode === 'all' || (mode === 'patient-only' && type === 'Patient')) return 'searchable without patient';
  return type === 'Patient' ? 'search needs _id' : 'search needs patient';
}

export function capabilityStatement(ctx: SandboxContext): Record<string, unknown> {
  const bulk = ctx.reads.bulk;
  const levels = bulk?.levels ?? [];
  const operation = (level: ExportLevel, name: string): Array<Record<string, string>> =>
    levels.includes(level) ? [{ name, definition: EXPORT_DEFINITION[level] }] : [];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2024-01-01',
    publisher: 'ehr-connectors sandbox',
    kind: 'instance',
    ...(bulk ? { instantiates: [`${BULK}/CapabilityStatement/bulk-data`] } : {}),
    software: { name: 'ehr-connectors sandbox', version: '0.1.0' },
    implementation: { description: 'Simulated EHR vendor (synthetic data only)', url: ctx.urls.fhirBaseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
              ],
            },
          ],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: ctx.urls.tokenUrl }],
            },
          ],
        },
        resource: [
          ...RESOURCE_TYPES.map((type) => ({
            type,
            documentation: documentation(ctx, type),
            interaction: [
              { code: 'read' },
              { code: 'search-type' },
              ...(ctx.reads.history ? [{ code: 'history-type' }] : []),
            ],
            versioning: 'versioned',
            searchParam: searchParams(ctx, type),
            ...(type === 'Patient' ? { operation: operation('patient', 'export') } : {}),
          })),
          { type: 'Group', interaction: [{ code: 'read' }], operation: operation('group', 'export') },
        ],
        operation: operation('system', 'export'),
      },
    ],
  };
}
