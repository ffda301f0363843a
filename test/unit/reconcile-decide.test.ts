import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RecordFacts, Side } from '../../lib/reconcile/decide.js';
import { decideRecord, NO_PENDING } from '../../lib/reconcile/decide.js';
import type { DigestKey } from '../../lib/reconcile/digest.js';
import { canonicalContent, groupDigests, groupValues, policyGroups, REST_GROUP } from '../../lib/reconcile/digest.js';
import type { TypeWritePolicy } from '../../lib/writeback/authority.js';

// Synthetic data only.
const key: DigestKey = { tenantId: 't1', key: createSecretKey(randomBytes(32)) };
const policy: TypeWritePolicy = {
  create: true,
  update: true,
  elements: { status: 'local', start: 'shared', comment: 'local-only' },
};
const groups = policyGroups(policy);
const base = {
  resourceType: 'Appointment',
  id: 'a1',
  meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00.000Z' },
  status: 'booked',
  start: '2024-02-01T09:00:00Z',
  comment: 'synthetic note',
  serviceType: [{ text: 'General practice' }],
};
const side = (r: Record<string, unknown>): Side => ({
  canonical: canonicalContent(r),
  digests: () => groupDigests(key, r, groups),
});
const facts = (
  local: Record<string, unknown> | null,
  remote: Record<string, unknown> | 'gone' | null,
  extra: Partial<RecordFacts> = {},
): RecordFacts => ({
  local: local ? side(local) : null,
  remote: remote === 'gone' || remote === null ? remote : side(remote),
  baseline: groupDigests(key, base, groups),
  pending: NO_PENDING,
  ...extra,
});

describe('reconcile digests', () => {
  it('compare content only: id, meta, text and key order do not matter', () => {
    const other = { ...base, id: 'other', meta: { versionId: '9' }, text: { div: 'x' } };
    const reordered = Object.fromEntries(Object.entries(base).reverse());
    expect(canonicalContent(other)).toBe(canonicalContent(base));
    expect(canonicalContent(reordered)).toBe(canonicalContent(base));
    expect(canonicalContent({ ...base, status: 'cancelled' })).not.toBe(canonicalContent(base));
  });

  it('are per group: a change of one element changes its group digest only; an extension goes with its element', () => {
    const a = groupDigests(key, base, groups);
    const b = groupDigests(key, { ...base, status: 'cancelled' }, groups);
    const c = groupDigests(key, { ...base, _status: { extension: [{ url: 'urn:x', valueString: 'y' }] } }, groups);
    const d = groupDigests(key, { ...base, serviceType: [{ text: 'Cardiology' }] }, groups);
    expect(Object.keys(a).sort()).toEqual(['_rest', 'comment', 'start', 'status']);
    expect(Object.keys(a).filter((g) => a[g] !== b[g])).toEqual(['status']);
    expect(Object.keys(a).filter((g) => a[g] !== c[g])).toEqual(['status']);
    expect(Object.keys(a).filter((g) => a[g] !== d[g])).toEqual([REST_GROUP]);
  });

  it('are keyed: another tenant key gives other digests, and a plain hash of a guessed status does not match', () => {
    const other: DigestKey = { tenantId: 't2', key: createSecretKey(randomBytes(32)) };
    const mine = groupDigests(key, base, groups);
    expect(groupDigests(other, base, groups).status).not.toBe(mine.status);
    const guesses = ['booked', 'cancelled', 'arrived'].flatMap((s) => {
      const text = JSON.stringify({ status: s });
      return [
        createHash('sha256').update(text).digest('base64url').slice(0, 32),
        createHash('sha256').update(s).digest('base64url').slice(0, 32),
      ];
    });
    expect(guesses).not.toContain(mine.status);
  });

  it('carry an element and its extension as a change carries them', () => {
    const r = { ...base, _status: { id: 'x' } };
    expect(groupValues(r, groups, ['status', 'start'])).toEqual({
      status: 'booked',
      _status: { id: 'x' },
      start: base.start,
    });
    expect(groupValues({ ...base, start: undefined }, groups, ['start'])).toEqual({ start: null });
  });
});

describe('reconcile decisions', () => {
  it('equal content is in sync; a missing baseline is written', () => {
    expect(decideRecord(facts(base, { ...base, meta: { versionId: '2' } }), policy)).toMatchObject({
      class: 'in-sync',
      baseline: null,
    });
    const fresh = decideRecord(facts(base, base, { baseline: null }), policy);
    expect(fresh.class).toBe('in-sync');
    expect(fresh.baseline).toEqual(groupDigests(key, base, groups));
  });

  it('a remote-owned element the vendor changed is taken from the vendor', () => {
    const remote = { ...base, serviceType: [{ text: 'Cardiology' }] };
    const d = decideRecord(facts(base, remote), policy);
    expect(d).toMatchObject({
      class: 'diverged',
      diverged: [REST_GROUP],
      takeRemote: [REST_GROUP],
      writeBack: [],
      conflict: null,
    });
    expect(d.baseline?.[REST_GROUP]).toBe(groupDigests(key, remote, groups)[REST_GROUP]);
  });

  it('a local-owned element that differs is written back; a local-only one is ignored', () => {
    const d = decideRecord(facts(base, { ...base, status: 'cancelled', comment: 'vendor note' }), policy);
    expect(d).toMatchObject({
      class: 'diverged',
      diverged: ['status'],
      writeBack: ['status'],
      takeRemote: [],
      ignored: ['comment'],
    });
    expect(decideRecord(facts(base, { ...base, comment: 'vendor note' }), policy)).toMatchObject({
      class: 'in-sync',
      ignored: ['comment'],
    });
  });

  it('a shared element: the side that changed since the baseline wins; both (or no baseline) is a conflict', () => {
    const moved = { ...base, start: '2024-03-01T09:00:00Z' };
    expect(decideRecord(facts(base, moved), policy)).toMatchObject({ takeRemote: ['start'], conflict: null });
    expect(decideRecord(facts(moved, base), policy)).toMatchObject({ writeBack: ['start'], conflict: null });
    const both = decideRecord(facts(moved, { ...base, start: '2024-04-01T09:00:00Z' }), policy);
    expect(both).toMatchObject({ class: 'diverged', conflict: { reason: 'both-changed', elements: ['start'] } });
    expect(decideRecord(facts(moved, base, { baseline: null }), policy).conflict).toEqual({
      reason: 'both-changed',
      elements: ['start'],
    });
  });

  it('elements a pending change carries are not differences', () => {
    const pending = { create: false, createdLocally: false, conflictOpen: false, elements: new Set(['status']) };
    expect(decideRecord(facts({ ...base, status: 'cancelled' }, base, { pending }), policy)).toMatchObject({
      class: 'pending',
      diverged: [],
    });
  });

  it('missing-local stores the vendor copy; gone tombstones, or opens a conflict over pending changes', () => {
    expect(decideRecord(facts(null, base), policy)).toMatchObject({ class: 'missing-local', storeRemote: true });
    expect(decideRecord(facts(base, 'gone'), policy)).toMatchObject({
      class: 'deleted-remote',
      tombstone: true,
      conflict: null,
    });
    const pending = { create: false, createdLocally: false, conflictOpen: false, elements: new Set(['status']) };
    expect(decideRecord(facts(base, 'gone', { pending }), policy)).toMatchObject({
      class: 'deleted-remote',
      tombstone: false,
      conflict: { reason: 'deleted-remote', elements: ['status'] },
    });
  });

  it('a record created here: pending create is skipped, a create the vendor never got is missing-remote', () => {
    expect(
      decideRecord(
        facts(base, 'gone', {
          pending: { create: true, createdLocally: true, conflictOpen: false, elements: new Set() },
        }),
        policy,
      ).class,
    ).toBe('pending');
    expect(
      decideRecord(
        facts(base, 'gone', {
          pending: { create: false, createdLocally: true, conflictOpen: false, elements: new Set() },
        }),
        policy,
      ),
    ).toMatchObject({
      class: 'missing-remote',
      tombstone: false,
    });
  });
});
