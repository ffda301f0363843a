import { describe, expect, it } from 'vitest';
import { PURPOSE_POLICIES } from '../../lib/fhir/classification.js';
import { RETAINED_ELEMENTS, minimise, minimiseForPurpose, patientIdOf } from '../../lib/fhir/minimise.js';

// Synthetic data only.
const fullPatient = {
  resourceType: 'Patient',
  id: 'p-1',
  meta: {
    versionId: '3',
    lastUpdated: '2024-05-01T10:00:00.000Z',
    source: '#vendor-node-7',
    security: [{ code: 'R' }],
    tag: [{ code: 't' }],
  },
  text: { status: 'generated', div: '<div>Synthetic Person, born 1970</div>' },
  photo: [{ contentType: 'image/png', data: 'iVBORw0KGgo=' }],
  contact: [{ name: { family: 'Synthetic-Contact' }, telecom: [{ system: 'phone', value: '555-0100' }] }],
  extension: [{ url: 'http://example.org/race', valueString: 'synthetic' }],
  modifierExtension: [{ url: 'http://example.org/m', valueBoolean: true }],
  contained: [{ resourceType: 'RelatedPerson', id: 'rp' }],
  communication: [{ language: { text: 'en' } }],
  generalPractitioner: [{ reference: 'Practitioner/1' }],
  vendorSpecificNote: 'free text from the vendor',
  identifier: [{ system: 'urn:mrn', value: 'MRN-SYNTH-1' }],
  active: true,
  name: [{ family: 'Synthetic', given: ['Person'] }],
  telecom: [{ system: 'phone', value: '555-0199' }],
  gender: 'unknown',
  birthDate: '1970-01-01',
  deceasedBoolean: false,
  address: [{ city: 'Springfield' }],
};

describe('minimise', () => {
  it('keeps only the retained Patient elements', () => {
    const kept = minimise('Patient', fullPatient);
    expect(Object.keys(kept).sort()).toEqual(
      [
        'resourceType',
        'id',
        'meta',
        'identifier',
        'active',
        'name',
        'telecom',
        'gender',
        'birthDate',
        'deceasedBoolean',
        'address',
        // The whole record: contacts, US Core extensions (race, ethnicity, birth sex), modifiers,
        // contained resources, languages and the primary care provider are part of it now.
        'contact',
        'extension',
        'modifierExtension',
        'contained',
        'communication',
        'generalPractitioner',
      ].sort(),
    );
    for (const dropped of ['text', 'photo', 'vendorSpecificNote']) {
      expect(kept, dropped).not.toHaveProperty(dropped);
    }
    expect(JSON.stringify(kept)).not.toContain('iVBORw0KGgo');
    expect(JSON.stringify(kept)).not.toContain('<div>');
  });

  it('reduces meta to versionId and lastUpdated', () => {
    const kept = minimise('Patient', fullPatient);
    expect(kept.meta).toEqual({ versionId: '3', lastUpdated: '2024-05-01T10:00:00.000Z' });
    expect(JSON.stringify(kept.meta)).not.toContain('vendor-node-7');
  });

  it('does not mutate its input', () => {
    const input = structuredClone(fullPatient);
    minimise('Patient', input);
    expect(input).toEqual(fullPatient);
  });

  it('drops narrative, photos and unknown fields for every resource type', () => {
    for (const type of PURPOSE_POLICIES['clinical-sync'].resourceTypes) {
      const resource: Record<string, unknown> = {
        resourceType: type,
        id: 'r-1',
        meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00Z', profile: ['x'] },
        text: { div: '<div>narrative</div>' },
        extension: [{ url: 'x' }],
        photo: [],
        contact: [],
        note: [{ text: 'free text' }],
        somethingNew: 1,
      };
      for (const element of RETAINED_ELEMENTS[type]) if (!(element in resource)) resource[element] = `kept-${element}`;
      const kept = minimise(type, resource);
      expect(Object.keys(kept).sort(), type).toEqual([...RETAINED_ELEMENTS[type]].sort());
      expect(kept.meta, type).toEqual({ versionId: '1', lastUpdated: '2024-01-01T00:00:00Z' });
      expect(RETAINED_ELEMENTS[type], type).not.toContain('text');
      expect(RETAINED_ELEMENTS[type], type).not.toContain('photo');
      expect(RETAINED_ELEMENTS[type], type).not.toContain('somethingNew');
    }
  });

  it('leaves absent elements absent', () => {
    expect(minimise('Observation', { resourceType: 'Observation', id: 'o' })).toEqual({
      resourceType: 'Observation',
      id: 'o',
    });
  });
});

describe('patientIdOf', () => {
  it('finds the patient for each resource type', () => {
    expect(patientIdOf('Patient', { resourceType: 'Patient', id: 'p-7' })).toBe('p-7');
    for (const type of ['Encounter', 'Observation', 'Condition', 'MedicationRequest'] as const) {
      expect(patientIdOf(type, { resourceType: type, id: 'x', subject: { reference: 'Patient/p-7' } }), type).toBe(
        'p-7',
      );
    }
    expect(
      patientIdOf('AllergyIntolerance', {
        resourceType: 'AllergyIntolerance',
        id: 'a',
        patient: { reference: 'Patient/p-8' },
      }),
    ).toBe('p-8');
    expect(
      patientIdOf('Appointment', {
        resourceType: 'Appointment',
        id: 'ap',
        participant: [
          { actor: { reference: 'Practitioner/dr-1' } },
          { actor: { reference: 'Patient/p-9' } },
          { actor: { reference: 'Location/l' } },
        ],
      }),
    ).toBe('p-9');
    const ref = { reference: 'Patient/p-10' };
    expect(patientIdOf('Coverage', { resourceType: 'Coverage', beneficiary: ref })).toBe('p-10');
    expect(patientIdOf('Immunization', { resourceType: 'Immunization', patient: ref })).toBe('p-10');
    expect(patientIdOf('RelatedPerson', { resourceType: 'RelatedPerson', patient: ref })).toBe('p-10');
    expect(patientIdOf('Device', { resourceType: 'Device', patient: ref })).toBe('p-10');
    expect(patientIdOf('DocumentReference', { resourceType: 'DocumentReference', subject: ref })).toBe('p-10');
    expect(
      patientIdOf('Provenance', { resourceType: 'Provenance', target: [{ reference: 'Observation/o-1' }, ref] }),
    ).toBe('p-10');
    // Directory types belong to no patient.
    expect(patientIdOf('Practitioner', { resourceType: 'Practitioner', subject: ref })).toBeUndefined();
    expect(patientIdOf('Organization', { resourceType: 'Organization', id: 'o' })).toBeUndefined();
  });

  it('returns undefined when there is no patient', () => {
    expect(patientIdOf('Patient', { resourceType: 'Patient' })).toBeUndefined();
    expect(
      patientIdOf('Observation', { resourceType: 'Observation', subject: { reference: 'Group/g-1' } }),
    ).toBeUndefined();
    expect(patientIdOf('Observation', { resourceType: 'Observation' })).toBeUndefined();
    expect(
      patientIdOf('Condition', { resourceType: 'Condition', subject: { display: 'no reference' } }),
    ).toBeUndefined();
    // AllergyIntolerance uses `patient`, not `subject`.
    expect(
      patientIdOf('AllergyIntolerance', { resourceType: 'AllergyIntolerance', subject: { reference: 'Patient/p' } }),
    ).toBeUndefined();
    expect(
      patientIdOf('Appointment', {
        resourceType: 'Appointment',
        participant: [{ actor: { reference: 'Practitioner/1' } }, {}],
      }),
    ).toBeUndefined();
    expect(patientIdOf('Appointment', { resourceType: 'Appointment', participant: 'not-an-array' })).toBeUndefined();
  });

  it('strips a _history suffix from versioned references', () => {
    expect(
      patientIdOf('Observation', { resourceType: 'Observation', subject: { reference: 'Patient/p-7/_history/2' } }),
    ).toBe('p-7');
  });
});

describe('a resource minimisation keeps whole', () => {
  const kept = {
    resourceType: 'Patient',
    id: 'p-2',
    meta: { versionId: '1', lastUpdated: '2024-05-01T10:00:00.000Z' },
    name: [{ family: 'Synthetic' }],
    gender: 'unknown',
  };
  it('is said to be unchanged, and its own JSON parses to what minimisation returns', () => {
    const raw = JSON.stringify(kept);
    const result = minimiseForPurpose('Patient', JSON.parse(raw) as Record<string, unknown>, 'clinical-sync');
    expect(result.unchanged).toBe(true);
    expect(result.dropped).toBe(0);
    expect(JSON.parse(raw)).toEqual(result.resource);
  });
  it('is not, when an element or a meta field other than version and lastUpdated goes', () => {
    expect(minimiseForPurpose('Patient', { ...kept, vendorSpecificNote: 'x' }, 'clinical-sync').unchanged).toBe(false);
    const tagged = { ...kept, meta: { ...kept.meta, source: '#node' } };
    expect(minimiseForPurpose('Patient', tagged, 'clinical-sync').unchanged).toBe(false);
    expect(minimiseForPurpose('Patient', { ...kept, meta: 'not an object' }, 'clinical-sync').unchanged).toBe(false);
    expect(minimiseForPurpose('Patient', fullPatient, 'clinical-sync').unchanged).toBe(false);
    // A narrower purpose drops what the clinical one keeps.
    const extended = { ...kept, extension: [{ url: 'http://example.org/x', valueString: 'synthetic' }] };
    expect(minimiseForPurpose('Patient', extended, 'clinical-sync').unchanged).toBe(true);
    expect(minimiseForPurpose('Patient', extended, 'billing-export').unchanged).toBe(false);
  });
});
