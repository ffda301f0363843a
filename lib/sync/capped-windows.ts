/**
 * Time windows for reading a type from a server that caps its result sets and offers no `_sort`: the type's
 * `_lastUpdated` range is cut into consecutive windows `[from, to)` (`ge` / `lt`, so an instant belongs to exactly
 * one window), each narrowed by halving until the server's `_summary=count` for it fits in what one search serves
 * whole. Pure arithmetic on epoch milliseconds; `null` is an open end.
 */

/** One window `[from, to)` in epoch milliseconds; `from: null` reaches back to the beginning, `to: null` to now on. */
export interface TimeWindow {
  from: number | null;
  to: number | null;
}

/** Where halving starts when a window reaches back to the beginning of time. */
const FLOOR_MS = 0;
/** An open-ended window starting at or after now is first cut this far on. */
const AHEAD_MS = 60_000;

/** The `_lastUpdated` values of a window's search (`ge` and `lt` with millisecond instants). */
export function lastUpdatedParams(w: TimeWindow): string[] {
  return [
    ...(w.from === null ? [] : [`ge${new Date(w.from).toISOString()}`]),
    ...(w.to === null ? [] : [`lt${new Date(w.to).toISOString()}`]),
  ];
}

/**
 * The first window to try at `from`: `hintMs` wide (the width that last fitted); open-ended (to now and on) without
 * a hint or when that width reaches `nowMs`, so the range always ends with an open window.
 */
export function windowAt(from: number | null, hintMs: number | null, nowMs: number): TimeWindow {
  if (hintMs === null || from === null || from + hintMs >= nowMs) return { from, to: null };
  return { from, to: from + hintMs };
}

/**
 * The earlier half of a window whose count is over the limit; null when it cannot be narrowed (one millisecond:
 * every match shares one instant). An open end is first closed at `nowMs` (or a minute on, when the window starts
 * at or after it).
 */
export function narrower(w: TimeWindow, nowMs: number): TimeWindow | null {
  if (w.to === null) {
    if (w.from === null) return { from: null, to: nowMs };
    return { from: w.from, to: nowMs > w.from ? nowMs : w.from + AHEAD_MS };
  }
  const lo = w.from ?? FLOOR_MS;
  if (w.to - lo <= 1) return null;
  return { from: w.from, to: lo + Math.floor((w.to - lo) / 2) };
}

/**
 * The width to try for the next window after one read whole: twice as wide while windows hold less than half the
 * limit, else the same; null after an open-ended one (the range is done) or one reaching back to the beginning.
 */
export function nextWidth(w: TimeWindow, counted: number, limit: number): number | null {
  if (w.from === null || w.to === null) return w.to === null ? null : Math.max(1, w.to - FLOOR_MS);
  const width = w.to - w.from;
  return counted * 2 < limit ? width * 2 : width;
}
