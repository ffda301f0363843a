/**
 * Minimum necessary (DESIGN §4 invariant 8): an integration's purpose keeps only the elements whose
 * data class it allows (lib/fhir/classification.ts is the source of truth); everything else —
 * narrative `text`, photos, elements FHIR R4 does not define, and classes outside the purpose — is
 * dropped before encryption, so it is never stored at all, and counted. Granularity is the top-level
 * element (a kept element is kept whole); `meta` is reduced to versionId and lastUpdated. A primitive's
 * `_element` sibling (its id and extensions) is kept exactly when the element is.
 */
import type { ResourceType } from '../domain.js';
import { RESOURCE_TYPES } from '../domain.js';
import type { Purpose } from './classification.js';
import { DEFAULT_PURPOSE, retainedElements } from './classification.js';

/** What the default purpose (clinical-sync) keeps per resource type; derived from the classification. */
export const RETAINED_ELEMENTS: Readonly<Record<ResourceType, readonly string[]>> = Object.fromEntries(
  RESOURCE_TYPES.map((type) => [type, retainedElements(type, DEFAULT_PURPOSE)]),
) as Record<ResourceType, string[]>;

export interface MinimisedResource {
  resource: Record<string, unknown>;
  /** Top-level elements present in the input that were not kept (unclassified or outside the purpose). */
  dropped: number;
  /**
   * True when the result holds exactly what the input did (nothing dropped, meta no more than its version and
   * lastUpdated): the input's own JSON text is then a serialisation of the result.
   */
  unchanged: boolean;
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
    if (retained.has(element) || (element.startsWith('_') && retained.has(element.slice(1)))) kept[element] = value;
    else dropped += 1;
  }
  const meta = resource.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
  let unchanged = dropped === 0;
  if (meta && retained.has('meta')) {
    kept.meta = { versionId: meta.versionId, lastUpdated: meta.lastUpdated };
    if (unchanged) unchanged = metaHoldsOnlyVersion(meta);
  }
  return { resource: kept, dropped, unchanged };
}

function metaHoldsOnlyVersion(meta: object): boolean {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return false;
  for (const key in meta) if (key !== 'versionId' && key !== 'lastUpdated') return false;
  return true;
}

/** The stored form of a resource under `purpose` (default clinical-sync). */
export function minimise(
  type: ResourceType,
  resource: Record<string, unknown>,
  purpose: Purpose = DEFAULT_PURPOSE,
): Record<string, unknown> {
  return minimiseForPurpose(type, resource, purpose).resource;
}

/**
 * Where each type names the patient whose record it is (a Reference, or an array of them), first match
 * wins; `Patient/<id>` references only; `subject` for types not listed. Directory types (Medication,
 * Organization, Location, Practitioner, PractitionerRole) belong to no one patient.
 */
const PATIENT_ELEMENTS: Readonly<Partial<Record<ResourceType, readonly string[]>>> = {
  AllergyIntolerance: ['patient'],
  Immunization: ['patient'],
  RelatedPerson: ['patient'],
  Coverage: ['beneficiary', 'subscriber', 'policyHolder'],
  Provenance: ['target'],
  Device: ['patient'],
  CareTeam: ['subject'],
  MedicationDispense: ['subject'],
  Specimen: ['subject'],
  Appointment: ['participant.actor'],
  Medication: [],
  Organization: [],
  Location: [],
  Practitioner: [],
  PractitionerRole: [],
};

/** The patient a resource belongs to (for pseudonymous audit), as a bare id, or undefined. */
export function patientIdOf(type: ResourceType, resource: Record<string, unknown>): string | undefined {
  if (type === 'Patient') return typeof resource.id === 'string' ? resource.id : undefined;
  for (const path of PATIENT_ELEMENTS[type] ?? ['subject']) {
    const [element, inner] = path.split('.') as [string, string | undefined];
    for (const item of asArray(resource[element])) {
      const ref = referenceOf(inner === undefined ? item : (item as Record<string, unknown> | null)?.[inner]);
      // `Patient/p-7/_history/2` names patient p-7: one patient, one pseudonym.
      const id = ref?.startsWith('Patient/') ? ref.slice('Patient/'.length).split('/')[0] : undefined;
      if (id) return id;
    }
  }
  return undefined;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined ? [] : [value];
}

function referenceOf(value: unknown): string | undefined {
  const ref = (value as { reference?: unknown } | undefined)?.reference;
  return typeof ref === 'string' ? ref : undefined;
}
