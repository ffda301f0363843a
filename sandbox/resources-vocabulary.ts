/**
 * The coded vocabularies the resource builders (resources.ts) pick from: LOINC vitals and labs, SNOMED
 * problems, allergens and reactions, RxNorm medications, HL7 terminology codings and status cycles. Apart
 * from the builders because these are data, not logic; the order of every list is part of the generated
 * data set (builders pick by index from a seeded generator): changing a list changes the data.
 */
import { LOINC, RXNORM, SNOMED, TINY_PNG, coding, concept, frozen } from './fhir-values.js';

export const VITALS = frozen(
  [
    ['8867-4', 'Heart rate', '/min', 50, 60, 'vital-signs'],
    ['8480-6', 'Systolic blood pressure', 'mm[Hg]', 95, 60, 'vital-signs'],
    ['8462-4', 'Diastolic blood pressure', 'mm[Hg]', 55, 40, 'vital-signs'],
    ['8310-5', 'Body temperature', 'Cel', 36, 3, 'vital-signs'],
    ['29463-7', 'Body weight', 'kg', 40, 80, 'vital-signs'],
    ['59408-5', 'Oxygen saturation in Arterial blood by Pulse oximetry', '%', 90, 10, 'vital-signs'],
    ['2339-0', 'Glucose [Mass/volume] in Blood', 'mg/dL', 70, 120, 'laboratory'],
    ['4548-4', 'Hemoglobin A1c/Hemoglobin.total in Blood', '%', 4.5, 5, 'laboratory'],
  ].map(([code, display, unit, min, span, category]) => ({
    min: min as number,
    span: span as number,
    unit: unit as string,
    noteLabel: (display as string).toLowerCase(),
    code: concept(LOINC, code as string, display as string),
    category: [coding('http://terminology.hl7.org/CodeSystem/observation-category', category as string)],
  })),
);
export const CONDITIONS = frozen(
  [
    ['44054006', 'Diabetes mellitus type 2'],
    ['38341003', 'Hypertensive disorder, systemic arterial'],
    ['195967001', 'Asthma'],
    ['55822004', 'Hyperlipidemia'],
    ['35489007', 'Depressive disorder'],
    ['69896004', 'Rheumatoid arthritis'],
  ].map(([code, display]) => concept(SNOMED, code as string, display as string)),
);
export const MEDICATIONS = frozen(
  [
    ['197361', 'Amlodipine 5 MG Oral Tablet', 'Take 1 tablet by mouth once daily'],
    [
      '860975',
      'Metformin hydrochloride 500 MG Extended Release Oral Tablet',
      'Take 1 tablet by mouth with evening meal',
    ],
    ['617312', 'Atorvastatin 10 MG Oral Tablet', 'Take 1 tablet by mouth at bedtime'],
    ['314076', 'Lisinopril 10 MG Oral Tablet', 'Take 1 tablet by mouth once daily'],
    ['310965', 'Ibuprofen 200 MG Oral Tablet', 'Take 1 tablet by mouth every 6 hours as needed for pain'],
  ].map(([code, display, sig]) => ({
    medication: concept(RXNORM, code as string, display as string),
    dosage: [{ sequence: 1, text: sig as string, timing: { code: { text: 'daily' } } }],
  })),
);
export const ALLERGENS = frozen(
  [
    ['764146007', 'Penicillin', 'medication'],
    ['227493005', 'Cashew nuts', 'food'],
    ['256259004', 'Pollen', 'environment'],
    ['102263004', 'Eggs', 'food'],
    ['111088007', 'Latex', 'environment'],
  ].map(([code, display, category]) => ({
    code: concept(SNOMED, code as string, display as string),
    category: [category as string],
  })),
);
export const REACTIONS = frozen(
  [
    ['247472004', 'Hives'],
    ['271807003', 'Eruption of skin'],
    ['39579001', 'Anaphylaxis'],
    ['267036007', 'Dyspnea'],
  ].map(([code, display]) => [coding(SNOMED, code as string, display as string)]),
);
export const SEVERITIES = ['mild', 'moderate', 'severe'] as const;
export const C = frozen({
  conditionClinical: ['active', 'remission', 'resolved'].map((c) =>
    coding('http://terminology.hl7.org/CodeSystem/condition-clinical', c),
  ),
  conditionConfirmed: coding('http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed'),
  problemList: [coding('http://terminology.hl7.org/CodeSystem/condition-category', 'problem-list-item')],
  allergyClinical: ['active', 'inactive', 'resolved'].map((c) =>
    coding('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', c),
  ),
  allergyConfirmed: coding('http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', 'confirmed'),
  ambulatory: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
  inpatient: {
    system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
    code: 'IMP',
    display: 'inpatient encounter',
  },
  checkUp: [concept(SNOMED, '185349003', 'Encounter for check up')],
  generalPractice: [concept(SNOMED, '394814009', 'General practice')],
  mrType: coding('http://terminology.hl7.org/CodeSystem/v2-0203', 'MR', 'Medical record number'),
  marital: [
    ['S', 'Never Married'],
    ['M', 'Married'],
    ['W', 'Widowed'],
    ['D', 'Divorced'],
  ].map(([c, d]) => coding('http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', c as string, d as string)),
  photo: [{ contentType: 'image/png', data: TINY_PNG }],
});
export const ENCOUNTER_STATUS = ['finished', 'in-progress', 'cancelled', 'finished'] as const;
export const MED_STATUS = ['active', 'completed', 'stopped', 'on-hold'] as const;
export const CRITICALITY = ['low', 'high', 'unable-to-assess'] as const;
export const APPOINTMENT_STATUS = ['booked', 'fulfilled', 'cancelled', 'noshow'] as const;
export const MINUTES = [15, 20, 30, 45, 60] as const;
