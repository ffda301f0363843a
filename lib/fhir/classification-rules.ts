/**
 * THE place where the connector decides which data class each top-level FHIR element belongs to.
 *
 * The elements themselves are not typed by hand: lib/fhir/r4-elements.json lists every top-level
 * element of every stored type, derived from the official FHIR R4 StructureDefinitions
 * (dev/fhir-elements.ts; choice elements expanded to each variant, `value[x]` → valueQuantity, …).
 * Every element listed there gets a class by these rules, in this order:
 *   1. the type's own overrides (TYPE_RULES[type].elements, by element or choice group: `deceased[x]`);
 *   2. the rules common to every type (COMMON);
 *   3. the type's default clinical class (TYPE_RULES[type].default).
 * So nothing is lost because nobody listed it; only NEVER_STORED elements and elements the definitions
 * do not know (vendor additions, later FHIR versions) are never stored, and minimisation counts them.
 *
 * Decisions on the awkward elements (docs/decisions.md, "The whole record"):
 *  - `text` (narrative) is NEVER stored: it is a rendering of the structured elements (which are kept)
 *    as free XHTML, typically repeating name, MRN and birth date; nothing is lost that the record lacks.
 *  - `photo` (Patient, Practitioner, RelatedPerson) is NEVER stored: a full-face image is a HIPAA
 *    identifier that no sync purpose needs, and a large binary besides.
 *  - `extension` has the type's default class (Patient: demographics, where US Core puts race,
 *    ethnicity, birth sex and gender identity; Condition: diagnoses, e.g. assertedDate); a purpose that
 *    does not need them drops them by override (PURPOSE_OVERRIDES in classification.ts).
 *  - `modifierExtension` and `implicitRules` are administrative: they change the meaning of the rest of
 *    the resource, so a stored record must never be stripped of them while other elements are kept.
 *  - `language` is administrative (a code needed to read the record's text).
 *  - `contained` resources have the type's default class: kept elements refer to them (`#med-1`), so
 *    dropping them under a purpose that keeps the type would leave dangling references.
 *  - A primitive's sibling `_element` (id/extension of a primitive, e.g. a data-absent-reason on
 *    `_birthDate`) follows the class of its element (classOf in classification.ts).
 */
import type { ResourceType } from '../domain.js';
import type { DataClass } from './data-classes.js';
import R4 from './r4-elements.json';

/** A rule's outcome: a data class, or never stored under any purpose. */
export const NEVER_STORED = 'never-stored';
export type ElementRule = DataClass | typeof NEVER_STORED;

/** Element names that mean the same thing in every type that has them. */
const COMMON: Readonly<Record<string, ElementRule>> = {
  // Needed to store any record at all (meta is reduced to versionId and lastUpdated).
  resourceType: 'administrative',
  id: 'administrative',
  meta: 'administrative',
  status: 'administrative',
  implicitRules: 'administrative',
  language: 'administrative',
  modifierExtension: 'administrative',
  text: NEVER_STORED,
  photo: NEVER_STORED,
  // Business identifiers, and the references that say whose record it is and of which visit.
  identifier: 'identifiers',
  subject: 'identifiers',
  patient: 'identifiers',
  encounter: 'identifiers',
  beneficiary: 'identifiers',
  // Free-text annotations by clinicians.
  note: 'clinical-notes',
};

/** The elements of a person: who they are, how to reach them. */
const PERSON: Readonly<Record<string, ElementRule>> = {
  name: 'demographics',
  telecom: 'demographics',
  gender: 'demographics',
  birthDate: 'demographics',
  address: 'demographics',
  communication: 'demographics',
};

export interface TypeRules {
  default: DataClass;
  /** Overrides by element name or by choice group (`onset[x]` covers onsetDateTime, onsetPeriod, …). */
  elements?: Readonly<Record<string, ElementRule>>;
}

export const TYPE_RULES: Readonly<Record<ResourceType, TypeRules>> = {
  Patient: {
    default: 'demographics',
    elements: {
      ...PERSON,
      active: 'administrative',
      link: 'identifiers',
      generalPractitioner: 'scheduling',
      managingOrganization: 'scheduling',
    },
  },
  RelatedPerson: { default: 'demographics', elements: { ...PERSON, active: 'administrative' } },
  Practitioner: {
    default: 'scheduling',
    elements: { ...PERSON, active: 'administrative', qualification: 'scheduling' },
  },
  PractitionerRole: { default: 'scheduling', elements: { active: 'administrative' } },
  Organization: { default: 'scheduling', elements: { active: 'administrative' } },
  Location: { default: 'scheduling' },
  Encounter: {
    default: 'scheduling',
    elements: {
      reasonCode: 'diagnoses',
      reasonReference: 'diagnoses',
      diagnosis: 'diagnoses',
      account: 'billing',
    },
  },
  Appointment: {
    default: 'scheduling',
    elements: {
      reasonCode: 'diagnoses',
      reasonReference: 'diagnoses',
      // Free text from the booking clerk or for the patient: may carry clinical detail.
      comment: 'clinical-notes',
      patientInstruction: 'clinical-notes',
    },
  },
  Observation: { default: 'labs-vitals' },
  DiagnosticReport: {
    default: 'labs-vitals',
    elements: { conclusion: 'clinical-notes', presentedForm: 'clinical-notes' },
  },
  Specimen: { default: 'labs-vitals' },
  Condition: { default: 'diagnoses' },
  AllergyIntolerance: { default: 'diagnoses' },
  Procedure: { default: 'procedures', elements: { reasonCode: 'diagnoses', reasonReference: 'diagnoses' } },
  Device: { default: 'procedures' },
  MedicationRequest: { default: 'medications' },
  MedicationDispense: { default: 'medications' },
  Medication: { default: 'medications' },
  Immunization: { default: 'medications' },
  CarePlan: { default: 'care-plans' },
  CareTeam: { default: 'care-plans' },
  Goal: { default: 'care-plans' },
  ServiceRequest: { default: 'care-plans' },
  DocumentReference: { default: 'clinical-notes' },
  QuestionnaireResponse: { default: 'clinical-notes' },
  // Who wrote what into the record: part of its documentation.
  Provenance: { default: 'clinical-notes' },
  Coverage: { default: 'billing', elements: { subscriberId: 'identifiers' } },
};

interface R4Type {
  elements: readonly string[];
  choices: Readonly<Record<string, readonly string[]>>;
}

/** Top-level elements of `type` per the FHIR R4 definitions (choice variants expanded), plus resourceType. */
export function r4Elements(type: ResourceType): readonly string[] {
  return ['resourceType', ...(R4.types as Record<string, R4Type>)[type]!.elements];
}

/** Every element of `type` with its rule (a class or NEVER_STORED), in the definitions' order. */
export function elementRules(type: ResourceType): Array<[string, ElementRule]> {
  const t = (R4.types as Record<string, R4Type>)[type]!;
  const rules = TYPE_RULES[type];
  const groupOf = new Map<string, string>();
  for (const [group, variants] of Object.entries(t.choices)) for (const v of variants) groupOf.set(v, group);
  const own = (element: string): ElementRule | undefined =>
    lookup(rules.elements, element) ?? lookup(rules.elements, groupOf.get(element));
  return r4Elements(type).map((element) => [element, own(element) ?? lookup(COMMON, element) ?? rules.default]);
}

function lookup(
  table: Readonly<Record<string, ElementRule>> | undefined,
  key: string | undefined,
): ElementRule | undefined {
  return table !== undefined && key !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;
}
