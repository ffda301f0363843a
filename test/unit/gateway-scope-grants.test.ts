/**
 * What the token endpoint grants (lib/gateway/scopes.ts splitScopes, scopeCovered, scopesNotCovered): a requested
 * scope string split without throwing, and a request covered only by permissions the consumer holds. Parsing of
 * one scope is test/unit/gateway-scopes.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { formatScope, parseScope, scopeCovered, scopesNotCovered, splitScopes } from '../../lib/gateway/scopes.js';

describe('scopes at the token endpoint', () => {
  it('splits a scope string, merges permissions per type and lists the words that are not scopes, in order', () => {
    const { scopes, unknown } = splitScopes(
      ' system/Patient.r  system/Patient.s\tsystem/Observation.cruds launch system/Group.rs patient/Encounter.rs ',
    );
    // Write scopes are taken here (registration decides who holds them); `d` grants nothing.
    expect(scopes.map(formatScope)).toEqual(['system/Patient.rs', 'system/Observation.crus']);
    expect(unknown).toEqual(['launch', 'system/Group.rs', 'patient/Encounter.rs']);
    expect(splitScopes('')).toEqual({ scopes: [], unknown: [] });
  });

  it('covers a request only with every permission held, across scopes; * covers types but only * covers *', () => {
    const held = splitScopes('system/Patient.r system/Patient.s system/Observation.r').scopes;
    expect(scopeCovered(held, parseScope('system/Patient.rs'))).toBe(true);
    expect(scopeCovered(held, parseScope('system/Observation.r'))).toBe(true);
    expect(scopeCovered(held, parseScope('system/Observation.rs'))).toBe(false);
    expect(scopeCovered(held, parseScope('system/Encounter.r'))).toBe(false);
    expect(scopeCovered(held, parseScope('system/*.r'))).toBe(false);
    const all = splitScopes('system/*.rs').scopes;
    expect(scopeCovered(all, parseScope('system/Condition.rs'))).toBe(true);
    expect(scopeCovered(all, parseScope('system/*.s'))).toBe(true);
    expect(scopesNotCovered(held, splitScopes('system/Patient.rs system/Encounter.s').scopes).map(formatScope)).toEqual(
      ['system/Encounter.s'],
    );
  });
});
