/**
 * The awkward Observation shapes a whole-record sync must keep: a blood-pressure panel with
 * systolic/diastolic `component`, a lab panel with `hasMember`, valueString / valueBoolean / valuePeriod,
 * effectivePeriod / effectiveInstant. Chosen by index before any random draw, so the ordinary vital
 * signs of every other index are exactly what they were before these shapes existed.
 */
import type { ResourceType } from '../lib/domain.js';
import { patientFamily, resourceId } from './data.js';
import type { FhirResource, ResourceBase } from './fhir-values.js';
import { CATEGORY_SYSTEM, DAY_MS, LOINC, UCUM, coding, concept, cycle, frozen, iso } from './fhir-values.js';

const vitalSigns = frozen([coding(CATEGORY_SYSTEM, 'vital-signs')]);
const laboratory = frozen([coding(CATEGORY_SYSTEM, 'laboratory')]);
const socialHistory = frozen([coding(CATEGORY_SYSTEM, 'social-history')]);
const O = frozen({
  bpPanel: concept(LOINC, '85354-9', 'Blood pressure panel with all children optional'),
  systolic: concept(LOINC, '8480-6', 'Systolic blood pressure'),
  diastolic: concept(LOINC, '8462-4', 'Diastolic blood pressure'),
  cbc: concept(LOINC, '58410-2', 'CBC panel - Blood by Automated count'),
  bloodType: concept(LOINC, '882-1', 'ABO and Rh group [Type] in Blood'),
  fallRisk: concept(LOINC, '73830-2', 'Fall risk assessment'),
  employment: concept(LOINC, '74165-2', 'History of employment status'),
});

export function ref(b: ResourceBase, type: ResourceType, n: number): { reference: string } {
  return { reference: `${type}/${resourceId(b.ctx.seed, type, n)}` };
}

export function note(b: ResourceBase, what: string): Array<{ text: string }> {
  return [{ text: `Synthetic ${what} for ${patientFamily(b.ctx.seed, b.patientIndex)} (version ${b.version}).` }];
}

export function quantity(value: number, unit: string): Record<string, unknown> {
  return { value, unit, system: UCUM, code: unit };
}

/** The unusual Observations (indices 1, 3, 5, 7, 9 modulo 10), or undefined for an ordinary vital sign. */
export function observationVariant(b: ResourceBase): FhirResource | undefined {
  const status = b.version === 1 ? 'final' : 'amended';
  const common = { resourceType: 'Observation', id: b.id, meta: b.meta, status, subject: b.ref };
  const shift = b.version - 1;
  switch (b.index % 10) {
    case 1:
      return {
        ...common,
        category: vitalSigns,
        code: O.bpPanel,
        effectiveDateTime: iso(b.when),
        component: [
          { code: O.systolic, valueQuantity: quantity(110 + b.rng.int(50) + shift, 'mm[Hg]') },
          { code: O.diastolic, valueQuantity: quantity(65 + b.rng.int(30), 'mm[Hg]') },
        ],
      };
    case 3:
      return {
        ...common,
        category: laboratory,
        code: O.cbc,
        effectiveDateTime: iso(b.when),
        issued: iso(b.when + 7_200_000),
        hasMember: [1, 2, 3].map((k) => ref(b, 'Observation', b.index + 10 * k + shift)),
      };
    case 5:
      return {
        ...common,
        category: laboratory,
        code: O.bloodType,
        effectivePeriod: { start: iso(b.when), end: iso(b.when + 1_800_000) },
        valueString: cycle(['A Rh positive', 'O Rh negative', 'B Rh positive'], b.rng.int(3), b.version),
        note: note(b, 'blood type comment'),
      };
    case 7:
      return {
        ...common,
        category: socialHistory,
        code: O.fallRisk,
        effectiveInstant: iso(b.when),
        valueBoolean: (b.rng.int(2) + shift) % 2 === 0,
      };
    case 9:
      return {
        ...common,
        category: socialHistory,
        code: O.employment,
        effectiveDateTime: iso(b.when),
        valuePeriod: { start: iso(b.when - 400 * DAY_MS), end: iso(b.when - (30 - shift) * DAY_MS) },
      };
    default:
      return undefined;
  }
}
