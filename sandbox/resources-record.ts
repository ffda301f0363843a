/**
 * The rest of the US Core clinical record: builders for the clinical types beyond the original seven
 * (the awkward Observation shapes are in resources-observation.ts, directory and coverage types in
 * resources-directory.ts). Like everything the sandbox serves, each resource is a pure function of
 * (seed, type, index, version); a version > 1 changes a clinical field.
 */
import type { ResourceType } from '../lib/domain.js';
import type { FhirResource, ResourceBase } from './fhir-values.js';
import { DAY_MS, LOINC, RXNORM, SNOMED, coding, concept, cycle, frozen, iso } from './fhir-values.js';
import { note, quantity, ref } from './resources-observation.js';
import {
  coverage,
  location,
  organization,
  practitioner,
  practitionerRole,
  relatedPerson,
} from './resources-directory.js';

type RecordType = Exclude<
  ResourceType,
  'Patient' | 'Encounter' | 'Observation' | 'Condition' | 'MedicationRequest' | 'AllergyIntolerance' | 'Appointment'
>;

const CVX = 'http://hl7.org/fhir/sid/cvx';
const K = frozen({
  cbc: concept(LOINC, '58410-2', 'CBC panel - Blood by Automated count'),
  progressNote: concept(LOINC, '11506-3', 'Progress note'),
  clinicalNote: coding('http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', 'clinical-note'),
  assessPlan: coding('http://hl7.org/fhir/us/core/CodeSystem/careplan-category', 'assess-plan'),
  lab: coding('http://terminology.hl7.org/CodeSystem/v2-0074', 'LAB'),
  blood: concept(SNOMED, '119297000', 'Blood specimen'),
  phq2: concept(LOINC, '55757-9', 'Patient Health Questionnaire 2 item (PHQ-2) [Reported]'),
  author: coding('http://terminology.hl7.org/CodeSystem/provenance-participant-type', 'author'),
  pcp: concept(SNOMED, '446050000', 'Primary care physician'),
  pacemaker: concept(SNOMED, '14106009', 'Cardiac pacemaker, device'),
  hba1cTarget: concept(LOINC, '4548-4', 'Hemoglobin A1c/Hemoglobin.total in Blood'),
  referral: concept(SNOMED, '3457005', 'Patient referral'),
  cardiology: concept(SNOMED, '183519002', 'Referral to cardiology service'),
});
const PROCEDURES = frozen(
  [
    ['80146002', 'Appendectomy'],
    ['73761001', 'Colonoscopy'],
    ['232717009', 'Coronary artery bypass grafting'],
    ['274031008', 'Rectal polypectomy'],
  ].map(([code, display]) => concept(SNOMED, code as string, display as string)),
);
const VACCINES = frozen(
  [
    ['140', 'Influenza, seasonal, injectable, preservative free'],
    ['208', 'COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose'],
    ['115', 'Tdap'],
  ].map(([code, display]) => concept(CVX, code as string, display as string)),
);
const DRUGS = frozen(
  [
    ['197361', 'Amlodipine 5 MG Oral Tablet'],
    ['617312', 'Atorvastatin 10 MG Oral Tablet'],
    ['314076', 'Lisinopril 10 MG Oral Tablet'],
  ].map(([code, display]) => concept(RXNORM, code as string, display as string)),
);
const PLAN_STATUS = ['active', 'completed', 'revoked'] as const;
const REQUEST_STATUS = ['active', 'completed', 'on-hold'] as const;

/** A practitioner of the data set (plausible: about one per eight patients; may not resolve in tiny sets). */
function practitionerRef(b: ResourceBase): { reference: string } {
  return ref(b, 'Practitioner', b.rng.int(Math.max(1, Math.floor(b.ctx.patientCount / 8))));
}
function head(b: ResourceBase, type: RecordType | 'Observation'): FhirResource {
  return { resourceType: type, id: b.id, meta: b.meta };
}

export function recordResource(type: RecordType, b: ResourceBase): FhirResource {
  const { rng, when, version } = b;
  const r = head(b, type);
  switch (type) {
    case 'CarePlan':
      return {
        ...r,
        // US Core requires a narrative on CarePlan: the connector deliberately never stores `text`.
        text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">Synthetic care plan</div>` },
        status: cycle(PLAN_STATUS, 0, version),
        intent: 'plan',
        category: [K.assessPlan],
        title: 'Synthetic diabetes care plan',
        subject: b.ref,
        period: { start: iso(when) },
        created: iso(when),
        author: practitionerRef(b),
        activity: [{ detail: { status: 'in-progress', code: K.hba1cTarget, description: 'Check HbA1c quarterly' } }],
        note: note(b, 'care plan'),
      };
    case 'CareTeam':
      return {
        ...r,
        status: version === 1 ? 'active' : 'inactive',
        name: 'Synthetic primary care team',
        subject: b.ref,
        participant: [
          { role: [K.pcp], member: practitionerRef(b) },
          { role: [concept(SNOMED, '116154003', 'Patient')], member: b.ref },
        ],
      };
    case 'Device':
      return {
        ...r,
        udiCarrier: [{ deviceIdentifier: `0880${String(b.index).padStart(10, '0')}`, carrierHRF: `(01)SYN${b.index}` }],
        status: version === 1 ? 'active' : 'inactive',
        distinctIdentifier: `SYN-DEV-${b.index}`,
        manufactureDate: iso(when - 200 * DAY_MS),
        expirationDate: iso(when + 3650 * DAY_MS),
        lotNumber: `LOT-${1000 + rng.int(9000)}`,
        type: K.pacemaker,
        patient: b.ref,
      };
    case 'DiagnosticReport': {
      const narrative = b.index % 2 === 1;
      return {
        ...r,
        status: version === 1 ? 'final' : 'amended',
        category: [narrative ? coding(LOINC, 'LP29684-5', 'Radiology') : K.lab],
        code: narrative ? concept(LOINC, '24627-2', 'Chest CT') : K.cbc,
        subject: b.ref,
        ...(narrative
          ? { effectivePeriod: { start: iso(when), end: iso(when + 900_000) } }
          : { effectiveDateTime: iso(when) }),
        issued: iso(when + 3_600_000),
        performer: [practitionerRef(b)],
        result: [ref(b, 'Observation', 3 + 10 * (b.index % 50))],
        ...(narrative
          ? {
              conclusion: `Synthetic impression ${version}: no acute findings.`,
              presentedForm: [{ contentType: 'text/plain', data: base64(note(b, 'radiology report')[0]!.text) }],
            }
          : {}),
      };
    }
    case 'DocumentReference':
      return {
        ...r,
        identifier: [{ system: 'urn:ietf:rfc:3986', value: `urn:uuid:00000000-0000-4000-8000-${pad12(b.index)}` }],
        status: 'current',
        type: K.progressNote,
        category: [K.clinicalNote],
        subject: b.ref,
        date: iso(when),
        author: [practitionerRef(b)],
        content: [{ attachment: { contentType: 'text/plain', data: base64(note(b, 'progress note')[0]!.text) } }],
        context: { period: { start: iso(when), end: iso(when + 1_800_000) } },
      };
    case 'Goal':
      return {
        ...r,
        lifecycleStatus: cycle(['active', 'completed', 'cancelled'], 0, version),
        description: { text: 'Synthetic goal: HbA1c below 7%' },
        subject: b.ref,
        startDate: iso(when).slice(0, 10),
        target: [
          { measure: K.hba1cTarget, detailQuantity: quantity(7, '%'), dueDate: iso(when + 180 * DAY_MS).slice(0, 10) },
        ],
      };
    case 'Immunization':
      return {
        ...r,
        status: version === 1 ? 'completed' : 'entered-in-error',
        vaccineCode: rng.pick(VACCINES),
        patient: b.ref,
        ...(b.index % 5 === 4
          ? { occurrenceString: 'Autumn 2023 (patient reported)' }
          : { occurrenceDateTime: iso(when) }),
        primarySource: b.index % 5 !== 4,
        lotNumber: `SYN${rng.int(100000)}`,
        doseQuantity: quantity(0.5, 'mL'),
      };
    case 'Medication':
      return {
        ...r,
        code: rng.pick(DRUGS),
        status: version === 1 ? 'active' : 'inactive',
        form: concept(SNOMED, '385055001', 'Tablet'),
      };
    case 'MedicationDispense':
      return {
        ...r,
        status: cycle(['completed', 'in-progress', 'stopped'], 0, version),
        medicationCodeableConcept: rng.pick(DRUGS),
        subject: b.ref,
        authorizingPrescription: [ref(b, 'MedicationRequest', b.index)],
        quantity: quantity(30, '{tbl}'),
        daysSupply: quantity(30, 'd'),
        whenHandedOver: iso(when),
        dosageInstruction: [{ text: 'Take 1 tablet by mouth once daily' }],
      };
    case 'Procedure':
      return {
        ...r,
        status: cycle(['completed', 'in-progress', 'stopped'], 0, version),
        code: rng.pick(PROCEDURES),
        subject: b.ref,
        ...(b.index % 2 === 0
          ? { performedDateTime: iso(when) }
          : { performedPeriod: { start: iso(when), end: iso(when + 5_400_000) } }),
        performer: [{ actor: practitionerRef(b) }],
        reasonCode: [concept(SNOMED, '74400008', 'Appendicitis')],
        note: note(b, 'operative note'),
      };
    case 'Provenance':
      return {
        ...r,
        target: [ref(b, 'Observation', b.index), b.ref],
        recorded: iso(when + version * 1000),
        agent: [{ type: K.author, who: practitionerRef(b), onBehalfOf: ref(b, 'Organization', 0) }],
      };
    case 'QuestionnaireResponse':
      return {
        ...r,
        questionnaire: 'http://loinc.org/q/55757-9',
        status: 'completed',
        subject: b.ref,
        authored: iso(when),
        author: b.ref,
        item: [
          { linkId: '1', text: K.phq2.text, answer: [{ valueInteger: (rng.int(7) + version) % 7 }] },
          { linkId: '2', text: 'Comment', answer: [{ valueString: note(b, 'questionnaire answer')[0]!.text }] },
        ],
      };
    case 'ServiceRequest':
      return {
        ...r,
        status: cycle(REQUEST_STATUS, 0, version),
        intent: 'order',
        category: [K.referral],
        code: K.cardiology,
        subject: b.ref,
        occurrenceDateTime: iso(when + 14 * DAY_MS),
        authoredOn: iso(when),
        requester: practitionerRef(b),
        note: note(b, 'referral reason'),
      };
    case 'Specimen':
      return {
        ...r,
        status: version === 1 ? 'available' : 'unavailable',
        type: K.blood,
        subject: b.ref,
        receivedTime: iso(when + 3_600_000),
        collection: { collectedDateTime: iso(when), bodySite: concept(SNOMED, '368209003', 'Right arm') },
      };
    case 'Coverage':
      return coverage(b, r);
    case 'Location':
      return location(b, r);
    case 'Organization':
      return organization(b, r);
    case 'Practitioner':
      return practitioner(b, r);
    case 'PractitionerRole':
      return practitionerRole(b, r);
    case 'RelatedPerson':
      return relatedPerson(b, r);
  }
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
function pad12(n: number): string {
  return String(n).padStart(12, '0');
}
