/**
 * Minimum necessary (DESIGN §4 invariant 8): an integration's purpose keeps only the elements whose
 * data class it allows (lib/fhir/classification.ts is the source of truth); everything else —
 * narrative `text`, photos, contacts, free-form extensions, and classes outside the purpose — is
 * dropped before encryption, so it is never stored at all, and counted. `meta` is reduced to
 * versionId and lastUpdated.
 */
import type { ResourceType } from '../domain.js';
import type { Purpose } from './classification.js';
import { DEFAULT_PURPOSE, retainedElements } from './classification.js';

/** What the default purpose (clinical-sync) keeps per resource type; derived from the classification. */
export const RETAINED_ELEMENTS: Readonly<Record<ResourceType, readonly string[]>> = {
  Patient: retainedElements('Patient', DEFAULT_PURPOSE),
  Encounter: retainedElements('Encounter', DEFAULT_PURPOSE),
  Observation: retainedElements('Observation', DEFAULT_PURPOSE),
  Condition: retainedElements('Condition', DEFAULT_PURPOSE),
  MedicationRequest: retainedElements('MedicationRequest', DEFAULT_PURPOSE),
  AllergyIntolerance: retainedElements('AllergyIntolerance', DEFAULT_PURPOSE),
  Appointment: retainedElements('Appointment', DEFAULT_PURPOSE),
};

export interface MinimisedResource {
  resource: Record<string, unknown>;
  /** Top-level elements present in the input that were not kept (unclassified or outside the purpose). */
  dropped: number;
}

const retainedCache = new Map<string, ReadonlySet<string>>();
function retainedSet(type: ResourceType, purpose: Purpose): ReadonlySet<string> {
  const key = `${purpose}\0${type}`;
  let set = retainedCache.get(key);
  if (!set) retainedCache.set(key, (set = new Set(retainedElements(type, purpose))));
  return set;
}

export function minimiseForPurpose(
  type: ResourceType,
  resource: Record<string, unknown>,
  purpose: Purpose,
): MinimisedResource {
  const retained = retainedSet(type, purpose);
  const kept: Record<string, unknown> = {};
  let dropped = 0;
  for (const [element, value] of Object.entries(resource)) {
    if (value === undefined) continue;
    if (retained.has(element)) kept[element] = value;
    else dropped += 1;
  }
  const meta = resource.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
  if (meta && retained.has('meta')) kept.meta = { versionId: meta.versionId, lastUpdated: meta.lastUpdated };
  return { resource: kept, dropped };
}

/** The stored form of a resource under `purpose` (default clinical-sync). */
export function minimise(
  type: ResourceType,
  resource: Record<string, unknown>,
  purpose: Purpose = DEFAULT_PURPOSE,
): Record<string, unknown> {
  return minimiseForPurpose(type, resource, purpose).resource;
}

/** The patient a resource belongs to (for pseudonymous audit), as a bare id, or undefined. */
export function patientIdOf(type: ResourceType, resource: Record<string, unknown>): string | undefined {
  if (type === 'Patient') return typeof resource.id === 'string' ? resource.id : undefined;
  const ref =
    referenceOf(type === 'AllergyIntolerance' ? resource.patient : resource.subject) ?? appointmentPatient(resource);
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
