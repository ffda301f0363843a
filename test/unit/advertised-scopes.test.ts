/** Which types' scopes are requested, from the vendor's advertised `scopes_supported`. */
import { describe, expect, it } from 'vitest';
import type { ResourceType } from '../../lib/domain.js';
import { advertisedTypes, unadvertisedTypes } from '../../lib/vendors/advertised-scopes.js';

const TYPES: ResourceType[] = ['Patient', 'Observation', 'Specimen', 'Goal'];

describe('advertised scopes', () => {
  it('requests only the types a concrete scopes_supported lists, in v1 or v2 syntax, in any context', () => {
    const supported = ['openid', 'system/Patient.rs', 'system/Observation.read', 'patient/Goal.rs'];
    expect(advertisedTypes(TYPES, supported)).toEqual(['Patient', 'Observation', 'Goal']);
    expect(unadvertisedTypes(TYPES, supported)).toEqual(['Specimen']);
  });

  it('does not count a scope that cannot read and search', () => {
    expect(unadvertisedTypes(TYPES, ['system/Patient.rs', 'system/Specimen.c', 'system/Goal.cruds'])).toEqual([
      'Observation',
      'Specimen',
    ]);
  });

  it('keeps every type when the list says nothing: absent, empty, no resource scopes, or a system wildcard', () => {
    for (const supported of [
      undefined,
      [],
      ['openid', 'fhirUser', 'launch'],
      ['patient/*.read', 'user/*.rs'],
      ['system/Patient.rs', 'system/*.rs'],
      ['system/*.read'],
    ])
      expect(unadvertisedTypes(TYPES, supported), JSON.stringify(supported)).toEqual([]);
  });
});
