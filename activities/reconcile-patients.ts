/**
 * Reconciliation of an integration that reads patient by patient (the `patient` strategy: vendors that refuse a
 * system-wide search). The roster is the sync's own (activities/sync-patients.ts `buildRoster`, stored in
 * sync_rosters); one activity takes a range of roster positions and, per patient, reads `[type]?patient=<id>` page
 * by page (Patient itself: the range's patients in one `Patient?_id=a,b,…` search), each page compared and decided
 * with the step a system search page uses, under the run's batch ledger: a page that committed before (a lost
 * reply, a worker killed before its heartbeat) gives back its recorded counts and next link instead of deciding
 * and counting again. Patient ids never leave the worker: the workflow sees roster positions and counts only.
 */
import { Context } from '@temporalio/activity';
import type { ResourceType } from '../lib/domain.js';
import { MalformedVendorDataError } from '../lib/errors/index.js';
import { parseSearchBundle } from '../lib/fhir/search-bundle.js';
import { reconcileBatch } from '../lib/reconcile/compare.js';
import { claimSeen, committedBatch } from '../lib/reconcile/repository.js';
import type { BatchTally } from '../lib/reconcile/tally.js';
import { addTally, emptyTally } from '../lib/reconcile/tally.js';
import { readRoster } from '../lib/sync/roster-repository.js';
import { reconcileBatchScope } from './reconcile-scope.js';
import { activityAuditContext } from './audit-context.js';
import type { ReconcileActivityDeps } from './deps.js';

export interface ReconcilePatientsInput {
  runId: string;
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  /** The run's roster (sync_rosters): positions refer to it. */
  rosterId: string;
  /** Roster positions [from, to). */
  from: number;
  to: number;
  pageSize: number;
}

export interface ReconcilePatientsResult extends BatchTally {
  /** The next roster position (== `to` when the range is done). */
  position: number;
}

interface Resume {
  position: number;
  tally: BatchTally;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** Pages of one patient's search followed at most (a runaway `next` chain is a vendor defect). */
const MAX_PAGES_PER_PATIENT = 10_000;

export function createReconcilePatientActivities(deps: ReconcileActivityDeps) {
  return {
    async reconcilePatients(input: ReconcilePatientsInput): Promise<ReconcilePatientsResult> {
      const ctx = activityAuditContext();
      const { integration, scope, policy } = await reconcileBatchScope(deps, input);
      const base = integration.baseUrl.replace(/\/$/, '');
      const call = { correlationId: ctx.correlationId, purpose: 'reconcile.patient' };
      const activity = Context.current();
      // A retry resumes after the last patient whose pages all committed (and the ledger covers the pages after).
      const resume = activity.info.heartbeatDetails as Resume | undefined;
      const done: Resume = resume ?? { position: input.from, tally: emptyTally() };
      const patients = await readRoster(deps.pool, input.rosterId, done.position, input.to);
      for (const id of patients)
        if (!FHIR_ID.test(id)) throw new MalformedVendorDataError('Patient', 'a roster member has no valid id');

      /** One patient's (or the range's Patient) search, page by page, each page a ledger batch. */
      const listed = async (first: string, claim: string): Promise<void> => {
        let url: string | undefined = first;
        for (let n = 0; url !== undefined && n < MAX_PAGES_PER_PATIENT; n++) {
          const batchKey = `${claim}:${n}`;
          const committed = await committedBatch(deps.pool, input.runId, batchKey);
          if (committed) {
            addTally(done.tally, committed.tally);
            url = committed.next ?? undefined;
            continue;
          }
          activity.heartbeat(structuredClone(done));
          const res = await deps.vendors.get(input.integrationId, url, call, undefined, {
            'cache-control': 'no-cache',
          });
          const page = parseSearchBundle(input.resourceType, res.body);
          // A record another patient's listing claimed first (in two compartments) is compared there only.
          const held = await claimSeen(
            deps.pool,
            input.runId,
            input.resourceType,
            page.resources.map((r) => r.id),
            claim,
          );
          const next = page.nextUrl ?? null;
          addTally(
            done.tally,
            await reconcileBatch(deps, ctx, {
              scope,
              runId: input.runId,
              policy,
              remote: page.resources.filter((r) => held.has(r.id)),
              batchKey,
              next,
            }),
          );
          url = next ?? undefined;
        }
      };

      if (input.resourceType === 'Patient') {
        // The range's patients by `_id` (a search every patient-strategy vendor answers); the rest of the stored
        // patients (left the roster, or deleted) are read by id in the unlisted phase.
        if (patients.length > 0) {
          const url = new URL(`${base}/Patient`);
          url.searchParams.set('_id', patients.join(','));
          url.searchParams.set('_count', String(Math.max(input.pageSize, patients.length)));
          await listed(url.toString(), `Patient:roster:${done.position}`);
        }
        done.position = input.to;
        activity.heartbeat(structuredClone(done));
        return { ...done.tally, position: done.position };
      }
      for (const patientId of patients) {
        const url = new URL(`${base}/${input.resourceType}`);
        url.searchParams.set('patient', patientId);
        url.searchParams.set('_count', String(input.pageSize));
        await listed(url.toString(), `${input.resourceType}:patient:${done.position}`);
        done.position += 1;
        activity.heartbeat(structuredClone(done));
      }
      done.position = Math.max(done.position, input.to);
      return { ...done.tally, position: done.position };
    },
  };
}
