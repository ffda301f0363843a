/**
 * The window arithmetic behind reading a capped, unsortable type (lib/sync/capped-windows.ts): windows are
 * consecutive `[ge, lt)` ranges, halved until a window is one millisecond, widened while they hold little, and the
 * range always ends with an open window. Checked against a simulated server: every instant lands in exactly one
 * window read whole, ties at one instant included, whatever the distribution.
 */
import { describe, expect, it } from 'vitest';
import { lastUpdatedParams, narrower, nextWidth, windowAt, type TimeWindow } from '../../lib/sync/capped-windows.js';

const NOW = Date.UTC(2025, 5, 1);

describe('capped windows', () => {
  it('searches a window with ge and lt at millisecond instants, an open end without its bound', () => {
    const w = { from: Date.UTC(2024, 0, 1), to: Date.UTC(2024, 0, 1, 0, 0, 0, 5) };
    expect(lastUpdatedParams(w)).toEqual(['ge2024-01-01T00:00:00.000Z', 'lt2024-01-01T00:00:00.005Z']);
    expect(lastUpdatedParams({ from: null, to: null })).toEqual([]);
    expect(lastUpdatedParams({ from: w.from, to: null })).toEqual(['ge2024-01-01T00:00:00.000Z']);
  });

  it('closes an open end at now (a minute on when the window starts later), then halves to one millisecond', () => {
    expect(narrower({ from: null, to: null }, NOW)).toEqual({ from: null, to: NOW });
    expect(narrower({ from: NOW - 10, to: null }, NOW)).toEqual({ from: NOW - 10, to: NOW });
    expect(narrower({ from: NOW + 5, to: null }, NOW)).toEqual({ from: NOW + 5, to: NOW + 5 + 60_000 });
    expect(narrower({ from: 100, to: 200 }, NOW)).toEqual({ from: 100, to: 150 });
    expect(narrower({ from: 100, to: 102 }, NOW)).toEqual({ from: 100, to: 101 });
    expect(narrower({ from: 100, to: 101 }, NOW)).toBeNull();
  });

  it('tries the last fitting width next, doubled while windows hold less than half the limit, open at now', () => {
    expect(windowAt(1000, 500, NOW)).toEqual({ from: 1000, to: 1500 });
    expect(windowAt(NOW - 100, 500, NOW)).toEqual({ from: NOW - 100, to: null });
    expect(windowAt(1000, null, NOW)).toEqual({ from: 1000, to: null });
    expect(nextWidth({ from: 1000, to: 1500 }, 4, 10)).toBe(1000);
    expect(nextWidth({ from: 1000, to: 1500 }, 5, 10)).toBe(500);
    expect(nextWidth({ from: 1000, to: null }, 0, 10)).toBeNull();
  });

  it('covers a simulated capped server: every resource read once, windows in time order, ties kept whole', () => {
    // 2,000 resources over a day, 40 sharing one instant, a burst of 300 within 50 ms; the server serves 50.
    const stamps: number[] = [];
    const day = Date.UTC(2025, 4, 1);
    for (let i = 0; i < 2000; i++) stamps.push(day + ((i * 7919) % 86_400_000));
    for (let i = 0; i < 40; i++) stamps.push(day + 3_600_000);
    for (let i = 0; i < 300; i++) stamps.push(day + 7_200_000 + (i % 50));
    const limit = 50;
    const count = (w: TimeWindow) =>
      stamps.filter((s) => (w.from === null || s >= w.from) && (w.to === null || s < w.to)).length;

    let from: number | null = null;
    let hint: number | null = null;
    let read = 0;
    let probes = 0;
    let previousEnd: number | null = null;
    for (let done = false; !done;) {
      let w = windowAt(from, hint, NOW);
      let counted = count(w);
      probes++;
      while (counted > limit) {
        const half = narrower(w, NOW);
        if (half === null) throw new Error(`unsplittable at ${w.from}`);
        w = half;
        counted = count(w);
        probes++;
      }
      expect(w.from).toBe(previousEnd ?? w.from);
      read += counted;
      previousEnd = w.to;
      from = w.to;
      done = w.to === null;
      hint = w.to === null ? null : nextWidth(w, counted, limit);
    }
    expect(read).toBe(stamps.length);
    expect(probes).toBeLessThan(1000);
  });
});
