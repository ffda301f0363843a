/**
 * The patient strategy: a roster (a Group's members, or a Patient search) is written to the database, then each
 * type is read patient by patient (`[type]?patient=…`, since the checkpoint where the vendor honours
 * `_lastUpdated`) in batches of roster positions. Patient ids never leave the worker: the workflow sees roster
 * positions and counts only. A batch heartbeats the position it has committed, so a retry resumes there.
 */
import { Context } from '@temporalio/activity';
import { MalformedVendorDataError, ScopeNotGrantedError, VendorHttpError } from '../lib/errors/index.js';
import { parseSearchBundle } from '../lib/fhir/search-bundle.js';
import { dropRoster, readRoster, storedPatientsOutside, writeRoster } from '../lib/sync/roster-repository.js';
import { applyDeletions, storeResources } from '../lib/sync/store-resources.js';
import type { CallContext } from '../lib/vendors/vendor-call.js';
import type { SyncActivityDeps } from './deps.js';
import { activityAuditContext } from './audit-context.js';
import type { BuildRosterInput, PatientBatchInput, PatientBatchResult } from './types.js';

/** Roster pages followed at most (a runaway `next` chain is a vendor defect, not a roster). */
const MAX_ROSTER_PAGES = 10_000;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

type Deps = Pick<SyncActivityDeps, 'pool' | 'keyring' | 'vendors' | 'directory'>;

export function createSyncPatientActivities(deps: Deps) {
  return {
    async buildRoster(input: BuildRosterInput): Promise<{ size: number; rechecks: number }> {
      const ctx = activityAuditContext();
      const integration = await deps.directory.integration(input.integrationId);
      const base = integration.baseUrl.replace(/\/$/, '');
      const call: CallContext = { correlationId: ctx.correlationId, purpose: 'sync.roster' };
      const ids: string[] = [];
      if (input.groupId !== undefined) {
        const res = await deps.vendors.get(
          input.integrationId,
          `${base}/Group/${encodeURIComponent(input.groupId)}`,
          call,
        );
        ids.push(...groupMembers(res.body));
      } else {
        let url: string | undefined = `${base}/Patient?${input.search ?? ''}`;
        for (let pages = 0; url !== undefined && pages < MAX_ROSTER_PAGES; pages++) {
          Context.current().heartbeat({ phase: 'roster', pages });
          const res = await deps.vendors.get(input.integrationId, url, call, undefined, {
            'cache-control': 'no-cache',
          });
          const page = parseSearchBundle('Patient', res.body);
          ids.push(...page.resources.map((r) => r.id));
          url = page.nextUrl;
        }
      }
      // Patients stored before but no longer on the roster follow it: only their Patient read runs again, so a
      // deletion at the vendor (410/404) becomes a tombstone instead of a record kept for ever.
      const unique = [...new Set(ids)];
      const rechecks = integration.resourceTypes.includes('Patient')
        ? await storedPatientsOutside(deps.pool, input, unique)
        : [];
      await writeRoster(deps.pool, input, [...unique, ...rechecks]);
      return { size: unique.length, rechecks: rechecks.length };
    },

    async syncPatientBatch(input: PatientBatchInput): Promise<PatientBatchResult> {
      const ctx = activityAuditContext();
      const integration = await deps.directory.integration(input.integrationId);
      const base = integration.baseUrl.replace(/\/$/, '');
      const call: CallContext = { correlationId: ctx.correlationId, purpose: 'sync.patient' };
      const scope = {
        tenantId: input.tenantId,
        integrationId: input.integrationId,
        resourceType: input.resourceType,
        purpose: integration.purpose,
      };
      // A retry resumes after the last patient whose pages all committed.
      const resumed = (Context.current().info.heartbeatDetails as { done?: PatientBatchResult } | undefined)?.done;
      const result: PatientBatchResult = resumed ?? emptyResult(input.from);
      const patients = await readRoster(deps.pool, input.rosterId, result.position, input.to);
      for (const patientId of patients) {
        if (input.resourceType === 'Patient') {
          await readPatient(patientId);
        } else {
          let url: string | undefined = firstUrl(patientId);
          while (url !== undefined) {
            const res = await deps.vendors
              .get(input.integrationId, url, call, undefined, { 'cache-control': 'no-cache' })
              .catch(scopeRefusal);
            const page = parseSearchBundle(input.resourceType, res.body);
            add(await storeResources(deps, ctx, scope, page.resources), page.resources.length);
            url = page.nextUrl;
          }
        }
        result.position += 1;
        result.patients += 1;
        Context.current().heartbeat({ done: result });
      }
      return result;

      async function readPatient(patientId: string): Promise<void> {
        if (!FHIR_ID.test(patientId)) throw new MalformedVendorDataError('Patient', 'a roster member has no valid id');
        try {
          const res = await deps.vendors.get(input.integrationId, `${base}/Patient/${patientId}`, call);
          const page = parseSearchBundle('Patient', asSearchset(res.body));
          add(await storeResources(deps, ctx, scope, page.resources), page.resources.length);
        } catch (err) {
          // Gone (410) or no longer there (404): the vendor deleted this patient; a tombstone, not a failure.
          if (!(err instanceof VendorHttpError) || (err.status !== 410 && err.status !== 404)) throw scopeRefusal(err);
          const gone = await applyDeletions(
            deps,
            ctx,
            scope,
            [{ resourceId: patientId, deletedAt: new Date().toISOString(), learned: true }],
            'read-gone',
          );
          result.deleted += gone.tombstoned;
        }
      }

      function firstUrl(patientId: string): string {
        const url = new URL(`${base}/${input.resourceType}`);
        url.searchParams.set('patient', patientId);
        url.searchParams.set('_count', String(input.pageSize));
        if (input.since !== null && input.lastUpdated) {
          const from = new Date(Date.parse(input.since) - input.overlapSeconds * 1000).toISOString();
          url.searchParams.set('_lastUpdated', `ge${from}`);
        }
        return url.toString();
      }

      function add(stored: Awaited<ReturnType<typeof storeResources>>, fetched: number): void {
        result.fetched += fetched;
        result.inserted += stored.inserted;
        result.updated += stored.updated;
        result.unchanged += stored.unchanged;
        result.dropped += stored.dropped;
        if (
          stored.maxLastUpdated !== null &&
          (result.maxLastUpdated === null || Date.parse(stored.maxLastUpdated) > Date.parse(result.maxLastUpdated))
        )
          result.maxLastUpdated = stored.maxLastUpdated;
      }

      function scopeRefusal(err: unknown): never {
        if (err instanceof VendorHttpError && err.status === 403)
          throw new ScopeNotGrantedError(input.integrationId, input.resourceType);
        throw err;
      }
    },

    async dropSyncRoster(input: { rosterId: string }): Promise<void> {
      await dropRoster(deps.pool, input.rosterId);
    },
  };
}

function emptyResult(position: number): PatientBatchResult {
  return {
    position,
    patients: 0,
    fetched: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    dropped: 0,
    deleted: 0,
    maxLastUpdated: null,
  };
}

/** Patient ids of a Group's `member[].entity` references (`Patient/<id>`); other members are not patients. */
function groupMembers(body: Buffer): string[] {
  let group: { resourceType?: unknown; member?: Array<{ entity?: { reference?: unknown }; inactive?: unknown }> };
  try {
    group = JSON.parse(body.toString('utf8')) as typeof group;
  } catch {
    throw new MalformedVendorDataError('Group', 'the roster Group is not valid JSON');
  }
  if (group.resourceType !== 'Group') throw new MalformedVendorDataError('Group', 'the roster is not a Group');
  return (group.member ?? []).flatMap((m) => {
    const ref = m.entity?.reference;
    if (m.inactive === true || typeof ref !== 'string' || !ref.startsWith('Patient/')) return [];
    const id = ref.slice('Patient/'.length).split('/')[0] ?? '';
    return FHIR_ID.test(id) ? [id] : [];
  });
}

/** A read returns the resource itself: wrapped as a one-entry searchset, it passes the same validation as pages. */
function asSearchset(body: Buffer): Buffer {
  let resource: unknown;
  try {
    resource = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedVendorDataError('Patient', `body is not valid JSON (${body.byteLength} bytes)`);
  }
  return Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource }] }));
}
