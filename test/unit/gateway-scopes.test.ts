/** SMART v2 scopes as the gateway grants them (lib/gateway/scopes.ts): parsing, refusal and coverage. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import {
  formatScope,
  parseRegisteredScopes,
  parseScope,
  parseScopes,
  scopeCovered,
  scopesNotCovered,
} from '../../lib/gateway/scopes.js';

describe('gateway scopes', () => {
  it('parses system scopes with read, search or both into GatewayScope', () => {
    expect(parseScope('system/Patient.rs')).toEqual({
      context: 'system',
      resourceType: 'Patient',
      read: true,
      search: true,
    });
    expect(parseScope('system/Observation.r')).toMatchObject({
      resourceType: 'Observation',
      read: true,
      search: false,
    });
    expect(parseScope('system/Observation.s')).toMatchObject({ read: false, search: true });
    expect(parseScope('system/*.rs')).toMatchObject({ resourceType: '*', read: true, search: true });
    expect(formatScope(parseScope('system/Encounter.rs')!)).toBe('system/Encounter.rs');
  });

  it.each([
    'system/Patient.read', // SMART v1
    'patient/Patient.rs', // another context
    'user/*.rs',
    'system/Patient.cruds', // writes
    'system/Patient.sr', // out of SMART's order
    'system/Patient.rs?category=vital-signs', // query restrictions are not supported
    'system/Group.rs', // not a stored type
    'system/patient.rs',
    'openid',
    '',
  ])('refuses %j', (text) => {
    expect(parseScope(text)).toBeUndefined();
  });

  it('splits a scope string, drops duplicates and lists what is not a scope', () => {
    const { scopes, unknown } = parseScopes(' system/Patient.rs  system/Patient.rs\tsystem/Observation.cruds launch ');
    expect(scopes.map(formatScope)).toEqual(['system/Patient.rs']);
    expect(unknown).toEqual(['system/Observation.cruds', 'launch']);
  });

  it('refuses a registration naming a word that is not a scope, or none at all', () => {
    expect(() => parseRegisteredScopes('system/Patient.rs system/Patient.write')).toThrow(InvalidArgumentError);
    expect(() => parseRegisteredScopes('system/Patient.rs system/Patient.write')).toThrow(/system\/Patient\.write/);
    expect(() => parseRegisteredScopes('   ')).toThrow(/at least one scope/);
  });

  it('covers a request only with every permission held, across scopes; * covers types but only * covers *', () => {
    const held = parseScopes('system/Patient.r system/Patient.s system/Observation.r').scopes;
    expect(scopeCovered(held, parseScope('system/Patient.rs')!)).toBe(true);
    expect(scopeCovered(held, parseScope('system/Observation.r')!)).toBe(true);
    expect(scopeCovered(held, parseScope('system/Observation.rs')!)).toBe(false);
    expect(scopeCovered(held, parseScope('system/Encounter.r')!)).toBe(false);
    expect(scopeCovered(held, parseScope('system/*.r')!)).toBe(false);
    const all = parseScopes('system/*.rs').scopes;
    expect(scopeCovered(all, parseScope('system/Condition.rs')!)).toBe(true);
    expect(scopeCovered(all, parseScope('system/*.s')!)).toBe(true);
    expect(scopesNotCovered(held, parseScopes('system/Patient.rs system/Encounter.s').scopes).map(formatScope)).toEqual(
      ['system/Encounter.s'],
    );
  });
});
