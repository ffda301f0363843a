/**
 * The `resolve` update's check (shared by the workflow's validator, the activity and ehrctl): exactly one of take or
 * fields, every disputed element decided and no other, a resolver identity, a deleted record decided whole; and
 * ehrctl's `--fields path=side,…` parsing.
 */
import { describe, expect, it } from 'vitest';
import { checkResolveRequest, parseFieldsOption } from '../../workflows/conflict-resolve-request.js';

const conflict = { elements: ['start', 'end'], reason: 'both-changed' };

function problem(request: unknown, c = conflict): string {
  const check = checkResolveRequest(request, c);
  if (check.ok) throw new Error('expected a refusal');
  return check.problem;
}

describe('resolve request', () => {
  it('decides every element: take one side, or each element its own', () => {
    expect(checkResolveRequest({ take: 'remote', by: 'nurse.lee' }, conflict)).toEqual({
      ok: true,
      decisions: { start: 'remote', end: 'remote' },
    });
    expect(checkResolveRequest({ fields: { end: 'remote', start: 'local' }, by: 'nurse.lee' }, conflict)).toEqual({
      ok: true,
      decisions: { start: 'local', end: 'remote' },
    });
  });

  it('refuses an unknown element, a partial decision, a bad side and a malformed argument', () => {
    expect(problem({ fields: { start: 'local', end: 'remote', status: 'local' }, by: 'a' })).toMatch(
      /status is not an element of this conflict/,
    );
    expect(problem({ fields: { start: 'local' }, by: 'a' })).toMatch(/undecided: end/);
    expect(problem({ fields: { start: 'local', end: 'both' }, by: 'a' })).toMatch(/end must be local or remote/);
    expect(problem({ take: 'mine', by: 'a' })).toMatch(/take: local or remote/);
    expect(problem({ take: 'local', fields: { start: 'local', end: 'local' }, by: 'a' })).toMatch(/exactly one/);
    expect(problem({ by: 'a' })).toMatch(/exactly one/);
    expect(problem({ take: 'local' })).toMatch(/by: expected the resolver identity/);
    expect(problem({ take: 'local', by: 'has space' })).toMatch(/by:/);
    expect(problem({ take: 'local', by: 'a', value: 'x' })).toMatch(/unexpected argument value/);
    expect(problem(['take', 'local'])).toMatch(/expected/);
    expect(problem({ fields: ['start'], by: 'a' })).toMatch(/fields: expected/);
    // Inherited names are not elements (no prototype lookups).
    expect(problem({ fields: { constructor: 'local' }, by: 'a' })).toMatch(/constructor is not an element/);
  });

  it('decides a record the vendor deleted whole', () => {
    const gone = { elements: ['start', 'end'], reason: 'deleted-remote' };
    expect(problem({ fields: { start: 'local', end: 'remote' }, by: 'a' }, gone)).toMatch(/whole record/);
    expect(checkResolveRequest({ fields: { start: 'local', end: 'local' }, by: 'a' }, gone).ok).toBe(true);
    expect(checkResolveRequest({ take: 'remote', by: 'a' }, gone).ok).toBe(true);
  });

  it('parses --fields, refusing a repeated path and anything but local or remote', () => {
    expect(parseFieldsOption('start=local, end=remote')).toEqual({ start: 'local', end: 'remote' });
    expect(parseFieldsOption('start=local,start=remote')).toBe('start is given twice');
    expect(parseFieldsOption('start=theirs')).toMatch(/expected path=local\|remote/);
    expect(parseFieldsOption('=local')).toMatch(/expected/);
  });
});
