/**
 * Minimum necessary (DESIGN §4 invariant 8): per resource type, the top-level elements the connector
 * keeps. Everything else — narrative `text`, photos, contacts, free-form extensions — is dropped
 * before encryption, so it is never stored at all. `meta` is reduced to versionId and lastUpdated.
 */
import type { ResourceType } from '../domain.js';

const COMMON = ['resourceType', 'id', 'meta', 'status'] as const;

export const RETAINED_ELEMENTS: Record<ResourceType, readonly string[]> = {
  Patient: [...COMMON, 'identifier', 'active', 'name', 'telecom', 'gender', 'birthDate', 'deceasedBoolean', 'deceasedDateTime', 'address'],
  Encounter: [...COMMON, 'class', 'type', 'subject', 'period', 'reasonCode', 'serviceProvider'],
  Observation: [...COMMON, 'category', 'code', 'subject', 'encounter', 'effectiveDateTime', 'issued', 'valueQuantity', 'valueCodeableConcept', 'valueString', 'interpretation', 'referenceRange'],
  Condition: [...COMMON, 'clinicalStatus', 'verificationStatus', 'category', 'code', 'subject', 'encounter', 'onsetDateTime', 'recordedDate'],
  MedicationRequest: [...COMMON, 'intent', 'medicationCodeableConcept', 'subject', 'encounter', 'authoredOn', 'dosageInstruction'],
  AllergyIntolerance: [...COMMON, 'clinicalStatus', 'verificationStatus', 'type', 'category', 'criticality', 'code', 'patient', 'onsetDateTime', 'reaction'],
  Appointment: [...COMMON, 'serviceType', 'appointmentType', 'start', 'end', 'minutesDuration', 'participant'],
};

export function minimise(type: ResourceType, resource: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const element of RETAINED_ELEMENTS[type]) {
    if (resource[element] !== undefined) kept[element] = resource[element];
  }
  const meta = resource.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
  if (meta) kept.meta = { versionId: meta.versionId, lastUpdated: meta.lastUpdated };
  return kept;
}

/** The patient a resource belongs to (for pseudonymous audit), as a bare id, or undefined. */
export function patientIdOf(type: ResourceType, resource: Record<string, unknown>): string | undefined {
  if (type === 'Patient') return typeof resource.id === 'string' ? resource.id : undefined;
  const ref = referenceOf(type === 'AllergyIntolerance' ? resource.patient : resource.subject) ?? appointmentPatient(resource);
  // `Patient/p-7/_history/2` names patient p-7: one patient, one pseudonym.
  return ref?.startsWith('Patient/') ? ref.slice('Patient/'.length).split('/')[0] || undefined : undefined;
}

function referenceOf(value: unknown): string | undefined {
  const ref = (value as { reference?: unknown } | undefined)?.reference;
  return typeof ref === 'string' ? ref : undefined;
}

function appointmentPatient(resource: Record<string, unknown>): string | undefined {
  const participants = Array.isArray(resource.participant) ? resource.participant : [];
  for (const p of participants) {
    const ref = referenceOf((p as { actor?: unknown }).actor);
    if (ref?.startsWith('Patient/')) return ref;
  }
  return undefined;
}
