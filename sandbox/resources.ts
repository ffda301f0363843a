/**
 * FHIR R4 resource builders. `version` > 1 deterministically changes a clinical field, so a modified record
 * is regenerated from (seed, type, index, version) and only its version and lastUpdated are stored. The codes
 * they pick from are resources-vocabulary.ts.
 */
import type { ResourceType } from '../lib/domain.js';
import { MRN_SYSTEM, patientFamily, patientIdentity, resourceId, typeIndex } from './data.js';
import { Rng, hash32 } from './prng.js';
import type { FhirResource, GenerationContext } from './fhir-values.js';
import { DAY_MS, UCUM, clinicalMs, cycle, iso } from './fhir-values.js';
import { observationVariant } from './resources-observation.js';
import { recordResource } from './resources-record.js';
import {
  ALLERGENS,
  APPOINTMENT_STATUS,
  C,
  CONDITIONS,
  CRITICALITY,
  ENCOUNTER_STATUS,
  MED_STATUS,
  MEDICATIONS,
  MINUTES,
  REACTIONS,
  SEVERITIES,
  VITALS,
} from './resources-vocabulary.js';

export { iso } from './fhir-values.js';

export type { FhirResource, GenerationContext } from './fhir-values.js';

export function generateResource(
  ctx: GenerationContext,
  type: ResourceType,
  index: number,
  version: number,
  lastUpdatedMs: number,
): FhirResource {
  const rng = new Rng(hash32(ctx.seed, typeIndex(type), index));
  const id = resourceId(ctx.seed, type, index);
  const meta = { versionId: String(version), lastUpdated: iso(lastUpdatedMs) };
  if (type === 'Patient') return patient(ctx, index, version, id, meta, rng);
  const patientIndex = rng.int(ctx.patientCount);
  const ref = { reference: `Patient/${resourceId(ctx.seed, 'Patient', patientIndex)}` };
  const when = clinicalMs(rng);
  const base = { ctx, index, version, id, meta, rng, ref, patientIndex, when };
  switch (type) {
    case 'Observation': {
      // Every tenth index from 1 up is a panel or an unusual value (resources-record.ts); the rest are vitals.
      const variant = observationVariant(base);
      if (variant) return variant;
      const vital = rng.pick(VITALS);
      const raw = vital.min + rng.next() * vital.span + (version - 1) * 0.5;
      return {
        resourceType: type,
        id,
        meta,
        status: version === 1 ? 'final' : 'amended',
        category: vital.category,
        code: vital.code,
        subject: ref,
        effectiveDateTime: iso(when),
        issued: iso(when + 3_600_000),
        valueQuantity: { value: Math.round(raw * 10) / 10, unit: vital.unit, system: UCUM, code: vital.unit },
        note: [
          {
            text:
              `Synthetic ${vital.noteLabel} reading for patient ` +
              `${patientFamily(ctx.seed, patientIndex)} (version ${version}).`,
          },
        ],
      };
    }
    case 'Encounter': {
      const status = cycle(ENCOUNTER_STATUS, rng.int(4), version);
      const amb = rng.next() < 0.8;
      return {
        resourceType: type,
        id,
        meta,
        status,
        class: amb ? C.ambulatory : C.inpatient,
        type: C.checkUp,
        subject: ref,
        period: { start: iso(when), end: iso(when + (amb ? 1800_000 : 3 * DAY_MS) + (version - 1) * 600_000) },
      };
    }
    case 'Condition': {
      const code = rng.pick(CONDITIONS);
      const clinical = (version - 1) % 3;
      const resource: FhirResource = {
        resourceType: type,
        id,
        meta,
        clinicalStatus: C.conditionClinical[clinical],
        verificationStatus: C.conditionConfirmed,
        category: C.problemList,
        code,
        subject: ref,
        onsetDateTime: iso(when),
        recordedDate: iso(when + DAY_MS),
        note: [
          {
            text:
              `Synthetic problem-list entry for ${patientFamily(ctx.seed, patientIndex)}; ` +
              `status ${['active', 'remission', 'resolved'][clinical]}.`,
          },
        ],
      };
      if (clinical === 2) resource.abatementDateTime = iso(when + 90 * DAY_MS);
      return resource;
    }
    case 'MedicationRequest': {
      const med = rng.pick(MEDICATIONS);
      return {
        resourceType: type,
        id,
        meta,
        status: cycle(MED_STATUS, 0, version),
        intent: 'order',
        medicationCodeableConcept: med.medication,
        subject: ref,
        authoredOn: iso(when),
        dosageInstruction: med.dosage,
      };
    }
    case 'AllergyIntolerance': {
      const allergen = rng.pick(ALLERGENS);
      const manifestation = rng.pick(REACTIONS);
      const criticality = cycle(CRITICALITY, rng.int(3), version);
      return {
        resourceType: type,
        id,
        meta,
        clinicalStatus: C.allergyClinical[(version - 1) % 3],
        verificationStatus: C.allergyConfirmed,
        type: 'allergy',
        category: allergen.category,
        criticality,
        code: allergen.code,
        patient: ref,
        recordedDate: iso(when),
        reaction: [{ manifestation, severity: rng.pick(SEVERITIES) }],
      };
    }
    case 'Appointment': {
      const minutes = rng.pick(MINUTES);
      return {
        resourceType: type,
        id,
        meta,
        status: cycle(APPOINTMENT_STATUS, 0, version),
        serviceType: C.generalPractice,
        start: iso(when),
        end: iso(when + minutes * 60_000),
        minutesDuration: minutes,
        participant: [
          { actor: ref, required: 'required', status: 'accepted' },
          { actor: { display: `Synthetic Clinic Room ${1 + rng.int(9)}` }, required: 'required', status: 'accepted' },
        ],
      };
    }
    case 'CarePlan':
    case 'CareTeam':
    case 'Coverage':
    case 'Device':
    case 'DiagnosticReport':
    case 'DocumentReference':
    case 'Goal':
    case 'Immunization':
    case 'Location':
    case 'Medication':
    case 'MedicationDispense':
    case 'Organization':
    case 'Practitioner':
    case 'PractitionerRole':
    case 'Procedure':
    case 'Provenance':
    case 'QuestionnaireResponse':
    case 'RelatedPerson':
    case 'ServiceRequest':
    case 'Specimen':
      return recordResource(type, base);
  }
}

function patient(
  ctx: GenerationContext,
  index: number,
  version: number,
  id: string,
  meta: FhirResource['meta'],
  rng: Rng,
): FhirResource {
  const who = patientIdentity(ctx.seed, index);
  const marital = cycle(C.marital, rng.int(4), version);
  return {
    resourceType: 'Patient',
    id,
    meta,
    text: {
      status: 'generated',
      div:
        `<div xmlns="http://www.w3.org/1999/xhtml">${who.given} ${who.family}, MRN ${who.mrn}, ` +
        `born ${who.birthDate}</div>`,
    },
    identifier: [
      {
        use: 'usual',
        type: C.mrType,
        system: MRN_SYSTEM,
        value: who.mrn,
      },
    ],
    active: true,
    name: [{ use: 'official', family: who.family, given: [who.given] }],
    telecom: [{ system: 'phone', value: who.phone, use: 'home' }],
    gender: who.gender,
    birthDate: who.birthDate,
    address: [
      { use: 'home', line: [who.addressLine], city: 'Synthville', state: 'ZZ', postalCode: '00000', country: 'US' },
    ],
    maritalStatus: marital,
    ...(rng.next() < 0.1 ? { photo: C.photo } : {}),
  };
}
