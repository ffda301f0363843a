import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RESOURCE_TYPES, type ResourceType } from '../../lib/domain.js';
import { baseLastUpdatedMs, computeLayout, parseResourceId, patientIdentity, resourceId } from '../../sandbox/data.js';
import { iso } from '../../sandbox/resources.js';
import { StoreChanges } from '../../sandbox/store-changes.js';
import { RecordStore, type SearchQuery } from '../../sandbox/store.js';

type Op = { kind: 'spread'; count: number } | { kind: 'ids'; picks: number[] } | { kind: 'create'; count: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('spread' as const), count: fc.integer({ min: 0, max: 15 }) }),
  fc.record({ kind: fc.constant('ids' as const), picks: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }) }),
  fc.record({ kind: fc.constant('create' as const), count: fc.integer({ min: 1, max: 4 }) }),
);

const key = (r: { lastUpdatedMs: number; id: string }): string =>
  `${String(r.lastUpdatedMs).padStart(16, '0')}|${r.id}`;

describe('sandbox record store (model-based)', () => {
  it('keyset paging from any bound returns exactly the current records after it, once each, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.constantFrom<ResourceType>(...RESOURCE_TYPES),
        fc.array(opArb, { maxLength: 6 }),
        fc.integer({ min: 1, max: 40 }),
        fc.option(fc.record({ pick: fc.nat(), inclusive: fc.boolean(), jitter: fc.integer({ min: -1, max: 1 }) })),
        fc.boolean(),
        (size, seed, type, ops, pageSize, bound, frozenClock) => {
          let clock = Date.UTC(2030, 0, 1);
          const store = new RecordStore(seed, size, frozenClock ? () => 0 : () => (clock += 3));
          // The model: id → (version, lastUpdated), starting from the documented base layout.
          const model = new Map<string, { id: string; version: number; lastUpdatedMs: number }>();
          for (let i = 0; i < computeLayout(size)[type]; i++) {
            const id = resourceId(seed, type, i);
            model.set(id, { id, version: 1, lastUpdatedMs: baseLastUpdatedMs(i) });
          }
          for (const op of ops) {
            const ids = [...model.keys()];
            const refs =
              op.kind === 'spread'
                ? store.modifySpread(type, op.count)
                : op.kind === 'create'
                  ? store.create(type, op.count)
                  : ids.length === 0
                    ? []
                    : store.modifyByIds(
                        type,
                        op.picks.map((p) => ids[p % ids.length] as string),
                      ).modified;
            if (op.kind === 'spread') expect(new Set(refs.map((r) => r.id)).size).toBe(refs.length);
            for (const r of refs) {
              const before = model.get(r.id);
              expect(r.version).toBe((before?.version ?? 0) + 1);
              model.set(r.id, { id: r.id, version: r.version, lastUpdatedMs: r.lastUpdatedMs });
            }
          }
          const expected = [...model.values()].sort((a, b) => (key(a) < key(b) ? -1 : 1));
          const stamps = expected.map((r) => r.lastUpdatedMs);
          expect(new Set(stamps).size).toBe(stamps.length); // lastUpdated unique within a type

          const q: SearchQuery = { count: pageSize };
          let wanted = expected;
          if (bound && expected.length > 0) {
            const ms =
              (expected[bound.pick % expected.length] as { lastUpdatedMs: number }).lastUpdatedMs + bound.jitter;
            q.lower = { ms, inclusive: bound.inclusive };
            wanted = expected.filter((r) => (bound.inclusive ? r.lastUpdatedMs >= ms : r.lastUpdatedMs > ms));
          }
          const seen: Array<{ id: string; version: number; lastUpdatedMs: number }> = [];
          for (let guard = 0; guard < 1000; guard++) {
            const page = store.search(type, q);
            expect(page.total).toBe(wanted.length);
            expect(page.records.length).toBeLessThanOrEqual(pageSize);
            seen.push(...page.records.map((r) => ({ id: r.id, version: r.version, lastUpdatedMs: r.lastUpdatedMs })));
            const last = page.records[page.records.length - 1];
            if (!page.hasMore || !last) break;
            q.after = { ms: last.lastUpdatedMs, id: last.id };
          }
          expect(seen).toEqual(wanted);
          if (!bound) {
            expect(store.manifest(type).map((r) => [r.id, r.version])).toEqual(expected.map((r) => [r.id, r.version]));
          }
          for (const r of wanted.slice(0, 5)) {
            const rendered = store.render(store.lookup(type, r.id)!);
            expect(rendered.meta).toEqual({
              versionId: String(r.version),
              lastUpdated: new Date(r.lastUpdatedMs).toISOString(),
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('ids are opaque but invertible, and reject tampering', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.constantFrom(...RESOURCE_TYPES),
        fc.nat({ max: 50_000_000 }),
        (seed, type, i) => {
          const id = resourceId(seed, type, i);
          expect(id).toMatch(/^[a-z]+-[0-9a-z]{7,}-[0-9a-z]{2}$/);
          expect(parseResourceId(seed, id)).toEqual({ type, index: i });
          const last = id.charAt(id.length - 1);
          const tampered = id.slice(0, -1) + (last === 'a' ? 'b' : 'a');
          expect(parseResourceId(seed, tampered)).toBeUndefined();
        },
      ),
    );
  });

  it('patient identities are synthetic-looking and MRNs/phones distinct', () => {
    const mrns = new Set<string>();
    const phones = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const who = patientIdentity(42, i);
      mrns.add(who.mrn);
      phones.add(who.phone);
      if (i < 500) {
        expect(who.family).toMatch(/^[A-Z][a-z]{6,}$/);
        expect(who.given).toMatch(/^[A-Z][a-z]{6,}$/);
        expect(who.addressLine).toMatch(/^\d+ Synthetic [A-Z][a-z]+ Way$/);
      }
    }
    expect(mrns.size).toBe(20_000);
    expect(phones.size).toBe(20_000);
  });

  it('formats instants exactly like Date#toISOString', () => {
    const instant = fc
      .tuple(fc.integer({ min: -500_000, max: 2_000_000 }), fc.nat({ max: 1_999_999_999 }))
      .map(([high, low]) => high * 2_000_000_000 + low);
    fc.assert(
      fc.property(instant, (ms) => {
        expect(iso(ms)).toBe(new Date(ms).toISOString());
      }),
    );
  });
});

describe('sandbox server clock', () => {
  it('never reads earlier than a write it stamped, so a _since export right after a burst lists all of it', () => {
    const frozen = Date.UTC(2030, 0, 1);
    const store = new RecordStore(7, 200, () => frozen);
    const changes = new StoreChanges(store);
    const since = frozen - 1;
    const deleted = changes.delete('Encounter', { count: 3 });
    expect(new Set(deleted.map((d) => d.lastUpdatedMs)).size).toBe(3);
    expect(store.clockMs()).toBeGreaterThanOrEqual(Math.max(...deleted.map((d) => d.lastUpdatedMs)));
    const listed = changes.deletedBetween('Encounter', since, store.clockMs()).map((r) => r.id);
    expect(listed.sort()).toEqual(deleted.map((d) => d.id).sort());
  });
});
