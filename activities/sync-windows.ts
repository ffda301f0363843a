/**
 * A type the server caps (its search stops short of its own `_summary=count`) and cannot sort, read whole in
 * consecutive `_lastUpdated` windows (lib/sync/capped-windows.ts): each window is counted first and halved until the
 * count fits in what one search serves, then read page by page (no `_sort`), stored like any page, and checked:
 * fetched must reach the count. One activity reads several windows in time order and returns counts, instants and
 * where to continue; it heartbeats after each window, so a retry resumes after the last one stored.
 */
import { Context } from '@temporalio/activity';
import { ScopeNotGrantedError, VendorHttpError } from '../lib/errors/index.js';
import { parseSearchBundle } from '../lib/fhir/search-bundle.js';
import { lastUpdatedParams, narrower, nextWidth, windowAt, type TimeWindow } from '../lib/sync/capped-windows.js';
import { storeResources } from '../lib/sync/store-resources.js';
import type { CallContext } from '../lib/vendors/vendor-call.js';
import { activityAuditContext } from './audit-context.js';
import type { SyncActivityDeps } from './deps.js';
import { assertTypeAllowed, integrationOfTenant } from './integration-policy.js';
import { countOf } from './sync-page.js';
import type { CappedWindowsInput, CappedWindowsResult } from './types.js';

/** Bounds on one activity (the workflow bounds the type's count probes per run). */
const WINDOWS_PER_ACTIVITY = 50;
const RESOURCES_PER_ACTIVITY = 10_000;
const MS_PER_ACTIVITY = 60_000;

type Deps = Pick<SyncActivityDeps, 'pool' | 'keyring' | 'vendors' | 'directory'>;

export function createSyncWindowActivities(deps: Deps) {
  return {
    async syncCappedWindows(input: CappedWindowsInput): Promise<CappedWindowsResult> {
      const ctx = activityAuditContext();
      const integration = await integrationOfTenant(deps.directory, input);
      assertTypeAllowed(integration, input.resourceType);
      const base = `${integration.baseUrl.replace(/\/$/, '')}/${input.resourceType}`;
      const call: CallContext = { correlationId: ctx.correlationId, purpose: 'sync.page' };
      const { tenantId, integrationId, resourceType } = input;
      const scope = { tenantId, integrationId, resourceType, purpose: integration.purpose };
      // A retry resumes after the last window whose pages all committed.
      const resumed = (Context.current().info.heartbeatDetails as { done?: CappedWindowsResult } | undefined)?.done;
      const r: CappedWindowsResult = resumed ?? emptyResult(input);

      const get = (target: string) =>
        deps.vendors.get(integrationId, target, call, undefined, { 'cache-control': 'no-cache' }).catch((err) => {
          // A 403 on a type we asked for means the vendor no longer grants it: name the type, do not retry.
          if (err instanceof VendorHttpError && err.status === 403)
            throw new ScopeNotGrantedError(integrationId, resourceType);
          throw err;
        });
      const url = (w: TimeWindow, params: Record<string, string>): string => {
        const u = new URL(base);
        for (const value of lastUpdatedParams(w)) u.searchParams.append('_lastUpdated', value);
        for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
        return u.toString();
      };
      const count = async (w: TimeWindow): Promise<number | null> => {
        r.probes += 1;
        return countOf(get(url(w, { _summary: 'count' })));
      };

      const started = Date.now();
      while (
        !r.done &&
        r.probes < input.probeBudget &&
        r.windows < WINDOWS_PER_ACTIVITY &&
        r.fetched < RESOURCES_PER_ACTIVITY &&
        Date.now() - started < MS_PER_ACTIVITY
      ) {
        const from = r.next === null ? null : Date.parse(r.next);
        let w = windowAt(from, r.hintMs, Date.now());
        let counted = await count(w);
        while (counted !== null && counted > r.limit && r.probes < input.probeBudget) {
          const half = narrower(w, Date.now());
          if (half === null) break;
          w = half;
          counted = await count(w);
        }
        if (counted === null) {
          gap(`the server gave no count for ${input.resourceType} ${describe(w)}`);
          break;
        }
        if (counted > r.limit) {
          if (narrower(w, Date.now()) !== null) break; // out of probes: the next activity (or run) goes on here
          // One instant holds more matches than one search serves: no window can read it whole without _sort.
          gap(
            `${counted} ${input.resourceType} share lastUpdated ${iso(w.from)}, more than the server serves in one` +
              ` search (${r.limit}); the checkpoint stays before it`,
          );
          pass(w, counted);
          r.hintMs = null;
          continue;
        }
        const fetched = counted === 0 ? 0 : await readWindow(w);
        if (fetched < counted) {
          // Fewer than counted: a smaller cap than observed, or a count that disagrees with the search.
          const recount = await count(w);
          if (recount !== null && recount > fetched) {
            if (fetched > 0 && narrower(w, Date.now()) !== null) {
              r.limit = Math.min(r.limit, fetched);
              r.hintMs = null;
              Context.current().heartbeat({ done: r });
              continue;
            }
            gap(
              `the server counted ${recount} ${input.resourceType} ${describe(w)} but its pages held ${fetched};` +
                ' the checkpoint stays before it',
            );
          }
        }
        pass(w, counted);
      }
      return r;

      /** Every page of one window (no `_sort`), stored; how many resources its pages held. */
      async function readWindow(w: TimeWindow): Promise<number> {
        let fetched = 0;
        let next: string | undefined = url(w, { _count: String(input.pageSize) });
        let newest: string | null = null;
        while (next !== undefined) {
          Context.current().heartbeat({ done: r });
          const page = parseSearchBundle(input.resourceType, (await get(next)).body);
          const stored = await storeResources(deps, ctx, scope, page.resources);
          r.pages += 1;
          fetched += page.resources.length;
          r.fetched += page.resources.length;
          r.inserted += stored.inserted;
          r.updated += stored.updated;
          r.unchanged += stored.unchanged;
          r.dropped += stored.dropped;
          newest = later(newest, stored.maxLastUpdated);
          next = page.nextUrl;
        }
        r.maxLastUpdated = later(r.maxLastUpdated, newest);
        if (r.gap === undefined) r.wholeHighWater = later(r.wholeHighWater, newest);
        return fetched;
      }

      function gap(detail: string): void {
        r.gap ??= detail;
      }

      /** Past window `w` (read, or named in `gap`): the next one starts at its end. */
      function pass(w: TimeWindow, counted: number): void {
        r.windows += 1;
        r.next = w.to === null ? null : new Date(w.to).toISOString();
        r.done = w.to === null;
        r.hintMs = w.to === null ? null : nextWidth(w, counted, r.limit);
        Context.current().heartbeat({ done: r });
      }
    },
  };
}

function emptyResult(input: CappedWindowsInput): CappedWindowsResult {
  return {
    pages: 0,
    fetched: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    dropped: 0,
    windows: 0,
    probes: 0,
    next: input.from,
    done: false,
    limit: input.limit,
    hintMs: input.hintMs,
    maxLastUpdated: null,
    wholeHighWater: null,
  };
}

function iso(ms: number | null): string {
  return ms === null ? 'the beginning' : new Date(ms).toISOString();
}

function describe(w: TimeWindow): string {
  return `from ${iso(w.from)} to ${w.to === null ? 'now' : new Date(w.to).toISOString()}`;
}

function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}
