/**
 * Domain types shared by workflows (as `import type`), activities, the CLI and the sandbox.
 * Nothing here may carry PHI: these shapes cross into Temporal histories.
 */
/**
 * Every resource type the connector stores: the US Core (R4, 6.1/7.0) profiles' types plus Appointment.
 * The first seven are the original ones, in their original order (the sandbox derives its data from a
 * type's position). `Group` is deliberately absent: it is a roster to read patients from, not a record.
 */
export const RESOURCE_TYPES = [
  'Patient',
  'Encounter',
  'Observation',
  'Condition',
  'MedicationRequest',
  'AllergyIntolerance',
  'Appointment',
  'CarePlan',
  'CareTeam',
  'Coverage',
  'Device',
  'DiagnosticReport',
  'DocumentReference',
  'Goal',
  'Immunization',
  'Location',
  'Medication',
  'MedicationDispense',
  'Organization',
  'Practitioner',
  'PractitionerRole',
  'Procedure',
  'Provenance',
  'QuestionnaireResponse',
  'RelatedPerson',
  'ServiceRequest',
  'Specimen',
] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export function isResourceType(value: string): value is ResourceType {
  return (RESOURCE_TYPES as readonly string[]).includes(value);
}

/**
 * How an integration reads from its vendor (lib/sync/read-strategy.ts): Bulk Data `$export`, a roster then
 * searches per patient and type, or system-wide searches (for servers that allow them). Chosen from the vendor
 * profile (`reads.defaultStrategy`), overridable per integration.
 */
export const READ_STRATEGIES = ['bulk', 'patient', 'search'] as const;
export type ReadStrategy = (typeof READ_STRATEGIES)[number];

export function isReadStrategy(value: string): value is ReadStrategy {
  return (READ_STRATEGIES as readonly string[]).includes(value);
}

/** The strategy's settings per integration: identifiers and numbers only (they reach workflow histories). */
export interface ReadOptions {
  /** bulk: the `$export` level; absent: the first the vendor profile lists (group needs `groupId`). */
  bulkLevel?: 'system' | 'group' | 'patient';
  /** bulk at group level, and the patient strategy's roster: the vendor's Group id. */
  groupId?: string;
  /** bulk: `_typeFilter` queries, e.g. `Observation?category=laboratory`. */
  typeFilter?: string[];
  /** patient: the roster as a Patient search (query string without `?`) when there is no Group. */
  rosterSearch?: string;
  /** Incremental searches start this many seconds before the checkpoint (default: the vendor profile's). */
  overlapSeconds?: number;
}

/** SMART v2 system scope for reading and searching one resource type. */
export function readScopeFor(type: ResourceType): string {
  return `system/${type}.rs`;
}

export const SEARCH_ATTRIBUTES = {
  tenantId: 'TenantId',
  integrationId: 'IntegrationId',
  vendor: 'Vendor',
  incidentId: 'IncidentId',
} as const;

/** Identifier rule for tenants and integrations: they appear in workflow ids, so keep them boring. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * An Idempotency-Key, ours to a vendor or a consumer's to the gateway: it travels as a header and lands in logs, so
 * identifiers only, bounded (gateway_idempotency_keys holds the same CHECK).
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9._:/+=-]{8,255}$/;

/**
 * Incidents run on their own task queue beside the main one, polled by every worker: a containment's
 * workflow tasks never wait behind the sync load it is containing.
 */
export function incidentTaskQueue(mainTaskQueue: string): string {
  return `${mainTaskQueue}-incidents`;
}

/**
 * An integration's sync Schedule (`nightly/<tenant>/<integration>`): created by the CLI, paused and
 * resumed by breach containment, so decided here where both can reach it.
 */
export function scheduleIdFor(t: { tenantId: string; integrationId: string }): string {
  return `nightly/${t.tenantId}/${t.integrationId}`;
}

/** An integration's reconciliation Schedule (`reconcile/<tenant>/<integration>`); containment pauses it too. */
export function reconcileScheduleIdFor(t: { tenantId: string; integrationId: string }): string {
  return `reconcile/${t.tenantId}/${t.integrationId}`;
}
