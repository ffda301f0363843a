/**
 * lib/fhir/r4-elements.json is generated from the official FHIR R4 definitions (dev/fhir-elements.ts);
 * this regenerates it from the installed package and fails when the committed table drifts.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TABLE_PATH, generateElementTable } from '../../dev/fhir-elements.js';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import { r4Elements } from '../../lib/fhir/classification-rules.js';

describe('the FHIR R4 element table', () => {
  it('is exactly what the generator derives from the definitions (npm run gen:fhir-elements)', () => {
    expect(fs.readFileSync(TABLE_PATH, 'utf8'), 'run: npm run gen:fhir-elements').toBe(generateElementTable());
  });

  it('expands choice elements to every variant the definitions allow', () => {
    const obs = r4Elements('Observation');
    for (const v of ['valueQuantity', 'valueCodeableConcept', 'valueString', 'valueBoolean', 'valuePeriod'])
      expect(obs).toContain(v);
    for (const v of ['effectiveDateTime', 'effectivePeriod', 'effectiveTiming', 'effectiveInstant'])
      expect(obs).toContain(v);
    expect(obs).toContain('component');
    expect(obs).toContain('hasMember');
    expect(obs).not.toContain('value[x]');
    expect(r4Elements('DiagnosticReport')).toContain('result');
    for (const type of RESOURCE_TYPES) expect(r4Elements(type)[0], type).toBe('resourceType');
  });
});
