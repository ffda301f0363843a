/** SMART v2 scope strings as the gateway (and break-glass) takes them: read-only system scopes, refused by name. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { formatScope, parseScope, parseScopes } from '../../lib/gateway/scopes.js';

describe('gateway scopes', () => {
  it('parses read, search and both, for one type or all, and prints them back canonically', () => {
    expect(parseScope('system/Observation.rs')).toEqual({
      context: 'system',
      resourceType: 'Observation',
      read: true,
      search: true,
    });
    expect(parseScope('system/Patient.r')).toMatchObject({ resourceType: 'Patient', read: true, search: false });
    expect(parseScope('system/*.s')).toMatchObject({ resourceType: '*', read: false, search: true });
    // SMART v1 `.read` means read and search.
    expect(formatScope(parseScope('system/Condition.read'))).toBe('system/Condition.rs');
    for (const s of ['system/Observation.rs', 'system/Patient.r', 'system/*.s'])
      expect(formatScope(parseScope(s))).toBe(s);
  });

  it('merges a list, so the same type named twice holds the union of its permissions', () => {
    const scopes = parseScopes('  system/Observation.r system/Patient.rs\tsystem/Observation.s ');
    expect(scopes.map(formatScope)).toEqual(['system/Observation.rs', 'system/Patient.rs']);
  });

  it.each([
    ['patient/Observation.rs', /system\/ scopes only/],
    ['user/Observation.read', /system\/ scopes only/],
    ['system/Observation.cruds', /read-only/],
    ['system/Observation.w', /expected r, s or rs/],
    ['system/Observation.sr', /read-only|expected r, s or rs/],
    ['system/Group.rs', /Group is not a resource type the store holds/],
    ['system/Observation.rs?category=laboratory', /is not a scope/],
    ['launch/patient', /is not a scope/],
  ])('refuses %s, naming it', (scope, message) => {
    let thrown: unknown;
    try {
      parseScopes(scope, '--scope');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as Error).message).toMatch(/^--scope: /);
    expect((thrown as Error).message).toMatch(message);
  });

  it('refuses an empty list and one too long', () => {
    expect(() => parseScopes('  ')).toThrow(/at least one scope/);
    expect(() => parseScopes(Array.from({ length: 33 }, () => 'system/Patient.r').join(' '))).toThrow(/at most 32/);
  });
});
