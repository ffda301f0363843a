/**
 * Data classification and purposes (DESIGN §4 invariant 8, minimum necessary).
 *
 * CLASSIFICATION is the one source of truth for what the connector may store: per resource type,
 * every top-level FHIR R4 element (lib/fhir/r4-elements.json, derived from the official definitions),
 * mapped to a data class by the rules in lib/fhir/classification-rules.ts. Elements the rules mark
 * never-stored (narrative `text`, `photo`) and elements the definitions do not know (vendor additions)
 * are never stored under any purpose. A PURPOSE (declared per integration) fixes the resource types it
 * may sync and the data classes it may store, with overrides per type (PURPOSE_OVERRIDES); minimisation
 * (lib/fhir/minimise.ts) drops every other element before encryption and counts what it dropped.
 */
import type { ResourceType } from '../domain.js';
import { RESOURCE_TYPES } from '../domain.js';
import { PolicyViolationError } from '../errors/index.js';
import { NEVER_STORED, elementRules } from './classification-rules.js';
import type { DataClass } from './data-classes.js';
import { DATA_CLASSES } from './data-classes.js';

export { DATA_CLASSES } from './data-classes.js';
export type { DataClass } from './data-classes.js';

/** Element → data class, per resource type. Only elements listed here can ever be stored. */
export const CLASSIFICATION: Readonly<Record<ResourceType, Readonly<Record<string, DataClass>>>> = Object.fromEntries(
  RESOURCE_TYPES.map((type) => [
    type,
    Object.fromEntries(
      elementRules(type).flatMap(([element, rule]) => (rule === NEVER_STORED ? [] : [[element, rule]])),
    ),
  ]),
) as Record<ResourceType, Record<string, DataClass>>;

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
    // Every type but Coverage, which is billing through and through.
    resourceTypes: RESOURCE_TYPES.filter((t) => t !== 'Coverage'),
    // Every class but billing.
    classes: DATA_CLASSES.filter((c) => c !== 'billing'),
  },
  'scheduling-sync': {
    purpose: 'scheduling-sync',
    description: 'who is booked where and when',
    resourceTypes: ['Patient', 'Appointment', 'Encounter'],
    classes: ['administrative', 'identifiers', 'demographics', 'scheduling'],
  },
  'billing-export': {
    purpose: 'billing-export',
    description: 'who was seen, against which account and coverage',
    resourceTypes: ['Patient', 'Encounter', 'Coverage'],
    classes: ['administrative', 'identifiers', 'demographics', 'billing'],
  },
};

export function isPurpose(value: string): value is Purpose {
  return (PURPOSES as readonly string[]).includes(value);
}

export function purposePolicy(purpose: Purpose): PurposePolicy {
  return PURPOSE_POLICIES[purpose];
}

export interface ElementOverride {
  /** Elements kept although their class is outside the purpose (must be classified elements). */
  keep?: readonly string[];
  /** Elements dropped although their class is within the purpose. */
  drop?: readonly string[];
}

/**
 * Per purpose and type, elements kept or dropped against their class. Scheduling and billing keep a
 * Patient's demographics to know who is booked or billed, but not US Core's race, ethnicity and birth
 * sex (Patient.extension), marital status, or the details of the patient's contacts (third parties).
 */
export const PURPOSE_OVERRIDES: Readonly<Partial<Record<Purpose, Partial<Record<ResourceType, ElementOverride>>>>> = {
  'scheduling-sync': { Patient: { drop: ['extension', 'contact', 'maritalStatus'] } },
  'billing-export': { Patient: { drop: ['extension', 'contact', 'maritalStatus'] } },
};

/**
 * The data class of one top-level element, or undefined when the element is never stored. A
 * primitive's `_element` sibling (its id and extensions) has the class of the element.
 */
export function classOf(type: ResourceType, element: string): DataClass | undefined {
  const table = CLASSIFICATION[type];
  if (Object.hasOwn(table, element)) return table[element];
  const base = element.startsWith('_') ? element.slice(1) : undefined;
  return base !== undefined && Object.hasOwn(table, base) ? table[base] : undefined;
}

/** The elements a purpose keeps for a resource type (empty when the type is outside the purpose). */
export function retainedElements(type: ResourceType, purpose: Purpose): string[] {
  const policy = PURPOSE_POLICIES[purpose];
  if (!policy.resourceTypes.includes(type)) return [];
  const override = PURPOSE_OVERRIDES[purpose]?.[type];
  return Object.entries(CLASSIFICATION[type])
    .filter(
      ([element, cls]) =>
        (policy.classes.includes(cls) || override?.keep?.includes(element) === true) &&
        override?.drop?.includes(element) !== true,
    )
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
