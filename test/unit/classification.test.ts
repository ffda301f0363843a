/**
 * Data classes and purposes (DESIGN §4 invariant 8): what each purpose stores, what it drops and
 * counts, and which registrations it refuses.
 */
import { describe, expect, it } from 'vitest';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import type { ResourceType } from '../../lib/domain.js';
import { InvalidArgumentError, PolicyViolationError } from '../../lib/errors/index.js';
import {
  CLASSIFICATION,
  DATA_CLASSES,
  PURPOSES,
  PURPOSE_POLICIES,
  assertTypesWithinPurpose,
  classOf,
  retainedElements,
} from '../../lib/fhir/classification.js';
import { RETAINED_ELEMENTS, minimise, minimiseForPurpose } from '../../lib/fhir/minimise.js';
import type { Pool } from '../../lib/store/pool.js';
import { generateResource } from '../../sandbox/resources.js';

const gen = { seed: 3, patientCount: 20 };
const sample = (type: ResourceType, index = 1) =>
  generateResource(gen, type, index, 1, Date.UTC(2024, 0, 1)) as Record<string, unknown>;

// Synthetic data only.
const encounter = {
  resourceType: 'Encounter',
  id: 'e-1',
  meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00Z', source: '#x' },
  status: 'finished',
  text: { status: 'generated', div: '<div>Visit of Synthetic Person</div>' },
  class: { code: 'AMB' },
  subject: { reference: 'Patient/p-1' },
  period: { start: '2024-01-01T09:00:00Z' },
  reasonCode: [{ text: 'Synthetic chest pain' }],
  account: [{ reference: 'Account/a-1' }],
};

describe('classification', () => {
  it('maps every element any purpose can store to a known data class', () => {
    for (const type of RESOURCE_TYPES) {
      for (const [element, cls] of Object.entries(CLASSIFICATION[type]))
        expect(DATA_CLASSES, `${type}.${element}`).toContain(cls);
      for (const purpose of PURPOSES)
        for (const element of retainedElements(type, purpose))
          expect(classOf(type, element), `${purpose} ${type}.${element}`).toBeDefined();
    }
  });

  it('stores, under clinical-sync, only classified elements of what the sandbox serves, and counts the rest', () => {
    for (const type of RESOURCE_TYPES) {
      for (let i = 0; i < 10; i++) {
        const resource = sample(type, i);
        const { resource: kept, dropped } = minimiseForPurpose(type, resource, 'clinical-sync');
        for (const element of Object.keys(kept)) expect(classOf(type, element), `${type}.${element}`).toBeDefined();
        expect(dropped, type).toBe(
          Object.keys(resource).filter((k) => resource[k] !== undefined && !(k in kept)).length,
        );
        expect(kept, type).not.toHaveProperty('text');
        expect(kept, type).not.toHaveProperty('photo');
      }
    }
    // A sandbox Patient carries narrative text: dropped and counted; its marital status is demographics.
    expect(minimiseForPurpose('Patient', sample('Patient'), 'clinical-sync').dropped).toBeGreaterThanOrEqual(1);
    expect(minimise('Patient', sample('Patient'))).toHaveProperty('maritalStatus');
    expect(minimise('Patient', sample('Patient'), 'scheduling-sync')).not.toHaveProperty('maritalStatus');
  });

  it('keeps the old clinical retention as the default purpose', () => {
    for (const type of RESOURCE_TYPES) expect(RETAINED_ELEMENTS[type]).toEqual(retainedElements(type, 'clinical-sync'));
    expect(minimise('Encounter', encounter)).toEqual(
      minimiseForPurpose('Encounter', encounter, 'clinical-sync').resource,
    );
  });

  it('drops the diagnosis from an Encounter synced for scheduling, and counts it', () => {
    const { resource, dropped } = minimiseForPurpose('Encounter', encounter, 'scheduling-sync');
    expect(resource).toEqual({
      resourceType: 'Encounter',
      id: 'e-1',
      meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00Z' },
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: 'Patient/p-1' },
      period: { start: '2024-01-01T09:00:00Z' },
    });
    expect(dropped).toBe(3); // text, reasonCode (diagnoses), account (billing)
  });

  it('keeps the account but not the visit details for billing export; clinical-sync never stores billing', () => {
    expect(Object.keys(minimiseForPurpose('Encounter', encounter, 'billing-export').resource).sort()).toEqual(
      ['account', 'id', 'meta', 'resourceType', 'status', 'subject'].sort(),
    );
    expect(minimise('Encounter', encounter)).not.toHaveProperty('account');
  });

  it('keeps identifiers and demographics of a Patient for every purpose', () => {
    for (const purpose of PURPOSES) {
      const kept = minimise('Patient', sample('Patient'), purpose);
      expect(kept, purpose).toHaveProperty('identifier');
      expect(kept, purpose).toHaveProperty('name');
      expect(kept, purpose).not.toHaveProperty('text');
    }
  });

  it('stores nothing of a resource type outside the purpose', () => {
    expect(retainedElements('Observation', 'scheduling-sync')).toEqual([]);
    expect(PURPOSE_POLICIES['scheduling-sync'].resourceTypes).toEqual(['Patient', 'Appointment', 'Encounter']);
    expect(PURPOSE_POLICIES['billing-export'].classes).not.toContain('diagnoses');
  });

  it('refuses resource types outside the purpose, naming them', () => {
    expect(() => assertTypesWithinPurpose('scheduling-sync', ['Patient', 'Observation', 'Condition'])).toThrow(
      PolicyViolationError,
    );
    expect(() => assertTypesWithinPurpose('scheduling-sync', ['Patient', 'Observation', 'Condition'])).toThrow(
      /scheduling-sync does not allow resource type\(s\) Observation, Condition/,
    );
    expect(() =>
      assertTypesWithinPurpose(
        'clinical-sync',
        RESOURCE_TYPES.filter((t) => t !== 'Coverage'),
      ),
    ).not.toThrow();
    // Coverage is billing through and through: billing-export's, not the clinical record's.
    expect(() => assertTypesWithinPurpose('clinical-sync', ['Coverage'])).toThrow(PolicyViolationError);
    expect(() => assertTypesWithinPurpose('billing-export', ['Patient', 'Encounter', 'Coverage'])).not.toThrow();
  });
});

describe('registering an integration with a purpose', () => {
  // Validation happens before any database or network access: this pool is never touched.
  const pool = new Proxy(
    {},
    {
      get: () => {
        throw new Error('the database was used');
      },
    },
  ) as unknown as Pool;
  const base = {
    id: 'i-purpose',
    tenantId: 't-purpose',
    vendor: 'sandbox',
    baseUrl: 'http://127.0.0.1:1/fhir',
    secretsDir: '/nonexistent',
  };
  const actor = { actor: 'test:unit', correlationId: '00000000-0000-4000-8000-000000000000' };

  it('refuses --types outside the purpose with a message naming them', async () => {
    const err = await registerIntegration(
      pool,
      { ...base, purpose: 'scheduling-sync', resourceTypes: ['Patient', 'MedicationRequest'] },
      actor,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyViolationError);
    expect((err as Error).message).toBe(
      'minimum-necessary: purpose scheduling-sync does not allow resource type(s) ' +
        'MedicationRequest; it allows Patient, Appointment, Encounter',
    );
  });

  it('refuses an unknown purpose, listing the known ones', async () => {
    const err = await registerIntegration(pool, { ...base, purpose: 'marketing' }, actor).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/--purpose.*marketing.*clinical-sync, scheduling-sync, billing-export/);
  });
});
