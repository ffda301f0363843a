/**
 * Directory and coverage types of the US Core record: the patient's insurance (Coverage) and relatives
 * (RelatedPerson), and the organisations, places and practitioners that care is given by. Practitioner
 * names are synthetic and carry the "synth" marker; a RelatedPerson shares its patient's family name, so
 * leak scans that look for patient identities also look for them.
 */
import { patientFamily, resourceId } from './data.js';
import type { FhirResource, ResourceBase } from './fhir-values.js';
import { concept, coding, cycle, frozen, iso, SNOMED, TINY_PNG } from './fhir-values.js';

const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const NPI = 'http://hl7.org/fhir/sid/us-npi';
const D = frozen({
  payer: concept('https://nahdo.org/sopt', '5', 'Private health insurance'),
  self: coding('http://terminology.hl7.org/CodeSystem/subscriber-relationship', 'self'),
  group: coding('http://terminology.hl7.org/CodeSystem/coverage-class', 'group'),
  prov: [coding('http://terminology.hl7.org/CodeSystem/organization-type', 'prov', 'Healthcare Provider')],
  room: coding('http://terminology.hl7.org/CodeSystem/v3-RoleCode', 'HOSP', 'Hospital'),
  mother: [coding('http://terminology.hl7.org/CodeSystem/v3-RoleCode', 'MTH', 'mother')],
  md: [{ code: coding('http://terminology.hl7.org/CodeSystem/v2-0360|2.7', 'MD', 'Doctor of Medicine') }],
  familyMedicine: [concept(SNOMED, '419772000', 'Family practice')],
  doctor: [concept(SNOMED, '158965000', 'Medical practitioner')],
  photo: [{ contentType: 'image/png', data: TINY_PNG }],
});
const SYLLABLES = ['ar', 'bel', 'cor', 'dan', 'el', 'fir', 'gan', 'hol'] as const;

function synthName(index: number): string {
  const a = SYLLABLES[index % 8] as string;
  const b = SYLLABLES[Math.floor(index / 8) % 8] as string;
  return `Synth${a}${b}`;
}
function npi(index: number): string {
  return `9${String(index).padStart(9, '0')}`;
}
function orgRef(b: ResourceBase): { reference: string } {
  return { reference: `Organization/${resourceId(b.ctx.seed, 'Organization', 0)}` };
}
function address(index: number): Array<Record<string, unknown>> {
  return [
    {
      line: [`${100 + index} Synthetic Clinic Way`],
      city: 'Synthville',
      state: 'ZZ',
      postalCode: '00000',
      country: 'US',
    },
  ];
}

export function coverage(b: ResourceBase, r: FhirResource): FhirResource {
  return {
    ...r,
    identifier: [
      { type: coding(V2_0203, 'MB'), system: 'urn:oid:2.16.840.1.113883.3.SANDBOX.member', value: `SYN-MB-${b.index}` },
    ],
    status: b.version === 1 ? 'active' : 'cancelled',
    type: D.payer,
    subscriberId: `SYN-SUB-${b.index}`,
    beneficiary: b.ref,
    relationship: D.self,
    period: { start: iso(b.when).slice(0, 10) },
    payor: [{ display: 'Synthetic Health Plan' }],
    class: [{ type: D.group, value: `GRP-${b.index % 20}`, name: 'Synthetic employer group' }],
  };
}

export function relatedPerson(b: ResourceBase, r: FhirResource): FhirResource {
  return {
    ...r,
    active: b.version === 1,
    patient: b.ref,
    relationship: D.mother,
    name: [{ family: patientFamily(b.ctx.seed, b.patientIndex), given: [synthName(b.index)] }],
    telecom: [{ system: 'phone', value: `555-0199-${String(b.index % 10_000).padStart(4, '0')}`, use: 'mobile' }],
    gender: 'female',
    address: address(b.index),
    ...(b.index % 10 === 0 ? { photo: D.photo } : {}),
  };
}

export function practitioner(b: ResourceBase, r: FhirResource): FhirResource {
  return {
    ...r,
    identifier: [{ system: NPI, value: npi(b.index) }],
    active: b.version === 1,
    name: [{ family: synthName(b.index), given: ['Doc'], prefix: ['Dr'] }],
    telecom: [{ system: 'phone', value: `555-0188-${String(b.index % 10_000).padStart(4, '0')}`, use: 'work' }],
    address: address(b.index),
    gender: cycle(['female', 'male', 'other'], b.index % 3, 1),
    qualification: D.md,
  };
}

export function practitionerRole(b: ResourceBase, r: FhirResource): FhirResource {
  return {
    ...r,
    active: b.version === 1,
    practitioner: { reference: `Practitioner/${resourceId(b.ctx.seed, 'Practitioner', b.index)}` },
    organization: orgRef(b),
    code: D.doctor,
    specialty: D.familyMedicine,
    location: [{ reference: `Location/${resourceId(b.ctx.seed, 'Location', b.index)}` }],
    telecom: [{ system: 'phone', value: '555-0100-0000', use: 'work' }],
  };
}

export function organization(b: ResourceBase, r: FhirResource): FhirResource {
  return {
    ...r,
    identifier: [{ system: NPI, value: npi(500_000_000 + b.index) }],
    active: b.version === 1,
    type: D.prov,
    name: `Synthetic Care Organisation ${b.index}`,
    telecom: [{ system: 'phone', value: '555-0100-0001', use: 'work' }],
    address: address(b.index),
  };
}

export function location(b: ResourceBase, r: FhirResource): FhirResource {
  return {
    ...r,
    status: b.version === 1 ? 'active' : 'suspended',
    name: `Synthetic Clinic Room ${b.index}`,
    mode: 'instance',
    type: [D.room],
    telecom: [{ system: 'phone', value: '555-0100-0002', use: 'work' }],
    address: address(b.index)[0],
    managingOrganization: orgRef(b),
  };
}
