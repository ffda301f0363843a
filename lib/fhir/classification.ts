/**
 * Data classification and purposes (DESIGN §4 invariant 8, minimum necessary).
 *
 * CLASSIFICATION is the one source of truth for what the connector may store: per resource type,
 * every top-level FHIR element it keeps, mapped to a data class. An element absent from the table
 * (narrative `text`, `extension`, photos, contacts, vendor additions…) is never stored under any
 * purpose. A PURPOSE (declared per integration) fixes the resource types it may sync and the data
 * classes it may store; minimisation (lib/fhir/minimise.ts) drops every other element before
 * encryption and counts what it dropped.
 */
import type { ResourceType } from '../domain.js';
import { RESOURCE_TYPES } from '../domain.js';
import { PolicyViolationError } from '../errors/index.js';

export const DATA_CLASSES = [
  /** resourceType, id, meta (versionId/lastUpdated only), status: needed to store any record at all. */
  'administrative',
  /** Business identifiers (MRNs) and references that point at the patient or encounter. */
  'identifiers',
  'demographics',
  'clinical-notes',
  'diagnoses',
  'medications',
  'labs-vitals',
  'scheduling',
  'billing',
] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

const ADMIN = {
  resourceType: 'administrative',
  id: 'administrative',
  meta: 'administrative',
  status: 'administrative',
} as const;

/** Element → data class, per resource type. Only elements listed here can ever be stored. */
export const CLASSIFICATION: Readonly<Record<ResourceType, Readonly<Record<string, DataClass>>>> = {
  Patient: {
    ...ADMIN,
    active: 'administrative',
    identifier: 'identifiers',
    name: 'demographics',
    telecom: 'demographics',
    gender: 'demographics',
    birthDate: 'demographics',
    deceasedBoolean: 'demographics',
    deceasedDateTime: 'demographics',
    address: 'demographics',
  },
  Encounter: {
    ...ADMIN,
    subject: 'identifiers',
    class: 'scheduling',
    type: 'scheduling',
    period: 'scheduling',
    serviceProvider: 'scheduling',
    reasonCode: 'diagnoses',
    account: 'billing',
  },
  Observation: {
    ...ADMIN,
    subject: 'identifiers',
    encounter: 'identifiers',
    category: 'labs-vitals',
    code: 'labs-vitals',
    effectiveDateTime: 'labs-vitals',
    issued: 'labs-vitals',
    valueQuantity: 'labs-vitals',
    valueCodeableConcept: 'labs-vitals',
    valueString: 'labs-vitals',
    interpretation: 'labs-vitals',
    referenceRange: 'labs-vitals',
    note: 'clinical-notes',
  },
  Condition: {
    ...ADMIN,
    subject: 'identifiers',
    encounter: 'identifiers',
    clinicalStatus: 'diagnoses',
    verificationStatus: 'diagnoses',
    category: 'diagnoses',
    code: 'diagnoses',
    onsetDateTime: 'diagnoses',
    recordedDate: 'diagnoses',
    note: 'clinical-notes',
  },
  MedicationRequest: {
    ...ADMIN,
    subject: 'identifiers',
    encounter: 'identifiers',
    intent: 'medications',
    medicationCodeableConcept: 'medications',
    authoredOn: 'medications',
    dosageInstruction: 'medications',
  },
  AllergyIntolerance: {
    ...ADMIN,
    patient: 'identifiers',
    clinicalStatus: 'diagnoses',
    verificationStatus: 'diagnoses',
    type: 'diagnoses',
    category: 'diagnoses',
    criticality: 'diagnoses',
    code: 'diagnoses',
    onsetDateTime: 'diagnoses',
    reaction: 'diagnoses',
  },
  Appointment: {
    ...ADMIN,
    serviceType: 'scheduling',
    appointmentType: 'scheduling',
    start: 'scheduling',
    end: 'scheduling',
    minutesDuration: 'scheduling',
    participant: 'scheduling',
  },
};

export const PURPOSES = ['clinical-sync', 'scheduling-sync', 'billing-export'] as const;
export type Purpose = (typeof PURPOSES)[number];
/** What existing integrations (registered before purposes existed) are. */
export const DEFAULT_PURPOSE: Purpose = 'clinical-sync';

export interface PurposePolicy {
  purpose: Purpose;
  description: string;
  resourceTypes: readonly ResourceType[];
  classes: readonly DataClass[];
}

export const PURPOSE_POLICIES: Readonly<Record<Purpose, PurposePolicy>> = {
  'clinical-sync': {
    purpose: 'clinical-sync',
    description: 'the clinical record: every clinical class, no billing',
    resourceTypes: RESOURCE_TYPES,
    classes: [
      'administrative',
      'identifiers',
      'demographics',
      'clinical-notes',
      'diagnoses',
      'medications',
      'labs-vitals',
      'scheduling',
    ],
  },
  'scheduling-sync': {
    purpose: 'scheduling-sync',
    description: 'who is booked where and when',
    resourceTypes: ['Patient', 'Appointment', 'Encounter'],
    classes: ['administrative', 'identifiers', 'demographics', 'scheduling'],
  },
  'billing-export': {
    purpose: 'billing-export',
    description: 'who was seen, against which account',
    resourceTypes: ['Patient', 'Encounter'],
    classes: ['administrative', 'identifiers', 'demographics', 'billing'],
  },
};

export function isPurpose(value: string): value is Purpose {
  return (PURPOSES as readonly string[]).includes(value);
}

export function purposePolicy(purpose: Purpose): PurposePolicy {
  return PURPOSE_POLICIES[purpose];
}

/** The data class of one top-level element, or undefined when the element is never stored. */
export function classOf(type: ResourceType, element: string): DataClass | undefined {
  return Object.prototype.hasOwnProperty.call(CLASSIFICATION[type], element)
    ? CLASSIFICATION[type][element]
    : undefined;
}

/** The elements a purpose keeps for a resource type (empty when the type is outside the purpose). */
export function retainedElements(type: ResourceType, purpose: Purpose): string[] {
  const policy = PURPOSE_POLICIES[purpose];
  if (!policy.resourceTypes.includes(type)) return [];
  return Object.entries(CLASSIFICATION[type])
    .filter(([, cls]) => policy.classes.includes(cls))
    .map(([element]) => element);
}

/** Resource types outside the purpose, in the order given. */
export function typesOutsidePurpose(purpose: Purpose, types: readonly string[]): string[] {
  const allowed = PURPOSE_POLICIES[purpose].resourceTypes as readonly string[];
  return types.filter((t) => !allowed.includes(t));
}

/** Refuses (PolicyViolationError naming them) resource types the purpose does not allow. */
export function assertTypesWithinPurpose(purpose: Purpose, types: readonly string[]): void {
  const outside = typesOutsidePurpose(purpose, types);
  if (outside.length > 0) {
    throw new PolicyViolationError(
      'minimum-necessary',
      `purpose ${purpose} does not allow resource type(s) ${outside.join(', ')}; ` +
        `it allows ${PURPOSE_POLICIES[purpose].resourceTypes.join(', ')}`,
    );
  }
}
