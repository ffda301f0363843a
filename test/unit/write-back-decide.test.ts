/**
 * What a write-back sends of an update, element by element (lib/writeback/decide.ts): the local value where the
 * vendor still holds the base (or already holds the local value); where the vendor changed it too, the element's
 * authority decides; local-only elements are never sent.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TypeWritePolicy } from '../../lib/writeback/authority.js';
import { applyElements, decideElements } from '../../lib/writeback/decide.js';

const policy: TypeWritePolicy = {
  create: true,
  update: true,
  elements: { status: 'local', start: 'shared', comment: 'local-only' },
};

describe('write-back element decisions', () => {
  it('applies where the vendor still holds the base, and by authority where it changed too', () => {
    const change = {
      elements: { status: 'cancelled', start: '2026-01-02', comment: 'note', serviceType: [{ text: 'x' }] },
      base: { status: 'booked', start: '2026-01-01', comment: null, serviceType: null },
    };
    // Nobody else touched them: every sendable element goes.
    expect(decideElements(policy, change, { status: 'booked', start: '2026-01-01' })).toEqual({
      apply: ['serviceType', 'start', 'status'],
      already: [],
      conflicted: [],
      vendorKept: [],
      localOnly: ['comment'],
    });
    // The vendor changed all of them: local wins, shared waits for a person, the vendor's own stands.
    const vendor = { status: 'arrived', start: '2026-01-03', serviceType: [{ text: 'y' }] };
    expect(decideElements(policy, change, vendor)).toEqual({
      apply: ['status'],
      already: [],
      conflicted: ['start'],
      vendorKept: ['serviceType'],
      localOnly: ['comment'],
    });
    // A resend after a crash finds its values there: nothing to send.
    const done = { status: 'cancelled', start: '2026-01-02', serviceType: [{ text: 'x' }] };
    expect(decideElements(policy, change, done)).toMatchObject({
      apply: [],
      already: ['serviceType', 'start', 'status'],
    });
  });

  it('absent and null are the same value; a removal is applied by deleting the element', () => {
    const change = { elements: { start: null }, base: { start: '2026-01-01' } };
    expect(decideElements(policy, change, { start: '2026-01-01' }).apply).toEqual(['start']);
    expect(decideElements(policy, change, {}).already).toEqual(['start']);
    const vendor = { resourceType: 'Appointment', id: 'a', meta: { versionId: '4' }, start: '2026-01-01', end: 'e' };
    expect(applyElements(vendor, change.elements, ['start'])).toEqual({
      resourceType: 'Appointment',
      id: 'a',
      end: 'e',
    });
  });

  it('never sends a local-only element and never applies a shared element the vendor changed', () => {
    const authority = fc.constantFrom('remote', 'local', 'shared', 'local-only');
    const value = fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 3 }));
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('a', 'b', 'c', 'd'),
          fc.record({ authority, base: value, local: value, vendor: value }),
        ),
        (spec) => {
          const p: TypeWritePolicy = {
            create: true,
            update: true,
            elements: Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v.authority])),
          };
          const change = {
            elements: Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v.local])),
            base: Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v.base])),
          };
          const vendor = Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v.vendor]));
          const d = decideElements(p, change, vendor);
          const all = [...d.apply, ...d.already, ...d.conflicted, ...d.vendorKept, ...d.localOnly].sort();
          expect(all).toEqual(Object.keys(spec).sort());
          for (const e of d.apply) {
            expect(spec[e]!.authority).not.toBe('local-only');
            if (spec[e]!.vendor !== spec[e]!.base) expect(spec[e]!.authority).toBe('local');
          }
        },
      ),
    );
  });
});
