/**
 * Fidelity of the whole record: a generated corpus with every stored type and the awkward shapes (a BP
 * panel with `component`, a lab panel with `hasMember`, notes, value[x] and effective[x] variants,
 * narrative reports, documents) goes through what a sync page does to it — minimise for the purpose,
 * serialise, encrypt, decrypt — and, per element, what comes back is exactly what the purpose allows:
 * every allowed element unchanged, every other one absent. Under clinical-sync nothing is dropped
 * except the deliberate never-stored elements (narrative `text`, `photo`).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import type { ResourceType } from '../../lib/domain.js';
import { decryptRecord, encryptRecord } from '../../lib/crypto/envelope.js';
import type { DataKey } from '../../lib/crypto/envelope.js';
import { NEVER_STORED, elementRules } from '../../lib/fhir/classification-rules.js';
import { PURPOSES, PURPOSE_POLICIES, classOf, retainedElements } from '../../lib/fhir/classification.js';
import type { Purpose } from '../../lib/fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../../lib/fhir/minimise.js';
import { generateResource } from '../../sandbox/resources.js';

const gen = { seed: 11, patientCount: 40 };
const PER_TYPE = 20;
const corpus: Array<{ type: ResourceType; resource: Record<string, unknown> }> = RESOURCE_TYPES.flatMap((type) =>
  Array.from({ length: PER_TYPE }, (_, i) => ({
    type,
    // Versions 1 and 2: an amended record has the same shape with changed clinical values.
    resource: generateResource(gen, type, i, 1 + (i % 2), Date.UTC(2024, 0, 1) + i * 1000) as Record<string, unknown>,
  })),
);
const dek: DataKey = { tenantId: 't-fidelity', version: 1, key: randomBytes(32) };

/** What a sync page stores, read back: minimised, serialised, encrypted, decrypted, parsed. */
async function storedForm(type: ResourceType, resource: Record<string, unknown>, purpose: Purpose) {
  const { resource: kept, dropped } = minimiseForPurpose(type, resource, purpose);
  const ctx = {
    tenantId: dek.tenantId,
    integrationId: 'i-fidelity',
    resourceType: type,
    resourceId: String(resource.id),
  };
  const ciphertext = encryptRecord(dek, ctx, Buffer.from(JSON.stringify(kept), 'utf8'));
  const plaintext = await decryptRecord(ciphertext, ctx, () => dek);
  return { stored: JSON.parse(plaintext.toString('utf8')) as Record<string, unknown>, dropped };
}

const NEVER = new Set(
  RESOURCE_TYPES.flatMap((t) => elementRules(t).filter(([, r]) => r === NEVER_STORED)).map(([e]) => e),
);

describe('fidelity of the whole record', () => {
  it('the corpus holds every type and every awkward shape', () => {
    const has = (type: ResourceType, element: string) =>
      corpus.some((c) => c.type === type && c.resource[element] !== undefined);
    for (const type of RESOURCE_TYPES) expect(corpus.filter((c) => c.type === type).length, type).toBe(PER_TYPE);
    for (const element of [
      'component',
      'hasMember',
      'valueQuantity',
      'valueString',
      'valueBoolean',
      'valuePeriod',
      'effectiveDateTime',
      'effectivePeriod',
      'effectiveInstant',
      'note',
    ])
      expect(has('Observation', element), `Observation.${element}`).toBe(true);
    const bp = corpus.find((c) => c.type === 'Observation' && c.resource.component !== undefined)!.resource;
    expect(JSON.stringify(bp.component)).toContain('8480-6'); // systolic
    expect(JSON.stringify(bp.component)).toContain('8462-4'); // diastolic
    for (const [type, element] of [
      ['DiagnosticReport', 'result'],
      ['DiagnosticReport', 'presentedForm'],
      ['DiagnosticReport', 'effectivePeriod'],
      ['DocumentReference', 'content'],
      ['Immunization', 'occurrenceString'],
      ['Procedure', 'performedPeriod'],
      ['CarePlan', 'text'],
      ['Patient', 'text'],
    ] as const)
      expect(has(type, element), `${type}.${element}`).toBe(true);
  });

  it('every element the corpus uses is an element FHIR R4 defines for its type', () => {
    for (const { type, resource } of corpus) {
      const known = new Set(elementRules(type).map(([e]) => e));
      for (const element of Object.keys(resource)) expect(known.has(element), `${type}.${element}`).toBe(true);
    }
  });

  it('stores, per element, exactly what each purpose allows, after encryption and decryption', async () => {
    for (const purpose of PURPOSES) {
      for (const { type, resource } of corpus) {
        const { stored, dropped } = await storedForm(type, resource, purpose);
        const allowed = new Set(retainedElements(type, purpose));
        let expectedDrops = 0;
        for (const [element, value] of Object.entries(resource)) {
          const where = `${purpose} ${type}/${String(resource.id)} ${element}`;
          if (!allowed.has(element)) {
            expect(stored, where).not.toHaveProperty(element);
            expectedDrops += 1;
          } else if (element === 'meta') {
            const meta = value as { versionId: string; lastUpdated: string };
            expect(stored.meta, where).toEqual({ versionId: meta.versionId, lastUpdated: meta.lastUpdated });
          } else {
            expect(stored[element], where).toEqual(value);
          }
        }
        expect(
          Object.keys(stored).every((e) => e in resource),
          `${purpose} ${type}: nothing added`,
        ).toBe(true);
        expect(dropped, `${purpose} ${type}`).toBe(expectedDrops);
        if (!PURPOSE_POLICIES[purpose].resourceTypes.includes(type)) expect(stored).toEqual({});
      }
    }
  });

  it('under clinical-sync drops nothing but the never-stored elements (0 unexpected drops)', async () => {
    const unexpected: string[] = [];
    let elements = 0;
    for (const { type, resource } of corpus) {
      if (!PURPOSE_POLICIES['clinical-sync'].resourceTypes.includes(type)) continue;
      const { stored } = await storedForm(type, resource, 'clinical-sync');
      for (const element of Object.keys(resource)) {
        elements += 1;
        if (!(element in stored) && !NEVER.has(element)) unexpected.push(`${type}.${element}`);
      }
    }
    expect([...new Set(unexpected)]).toEqual([]);
    expect(elements).toBeGreaterThan(2000);
    expect([...NEVER].sort()).toEqual(['photo', 'text']);
  });

  it('names the patient of every resource that belongs to one', () => {
    const directory = new Set<ResourceType>([
      'Medication',
      'Organization',
      'Location',
      'Practitioner',
      'PractitionerRole',
    ]);
    for (const { type, resource } of corpus) {
      const id = patientIdOf(type, resource);
      if (directory.has(type)) expect(id, type).toBeUndefined();
      else expect(id, `${type}/${String(resource.id)}`).toMatch(/^pt-/);
    }
  });

  it('keeps a primitive extension (_element) exactly when it keeps the element', async () => {
    const patient = {
      resourceType: 'Patient',
      id: 'p-1',
      birthDate: '1970-01-01',
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason' }] },
      _unknownThing: { id: 'x' },
    };
    const { stored, dropped } = await storedForm('Patient', patient, 'scheduling-sync');
    expect(stored._birthDate).toEqual(patient._birthDate);
    expect(stored).not.toHaveProperty('_unknownThing');
    expect(dropped).toBe(1);
    expect(classOf('Patient', '_birthDate')).toBe('demographics');
  });
});
