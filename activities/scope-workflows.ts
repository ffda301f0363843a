/**
 * Finding and cancelling every running workflow of an incident's scope: nightly and manual syncs,
 * webhook delta syncs (`webhook-sync/<tenant>/<integration>`), their child syncs, and any other
 * workflow that carries the scope's `IntegrationId` (or, for a tenant or `all` scope, `TenantId`)
 * search attribute. Key rotations and incidents are left running: they change keys, not vendor
 * traffic, and cancelling a rotation would roll it back onto the old key.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import pLimit from 'p-limit';
import type { IncidentScope } from '../lib/incidents/scope.js';

/** Workflow types containment never cancels, and why (see the module comment). */
export const NOT_CANCELLED_BY_CONTAINMENT = ['keyRotation', 'breachContainment'] as const;

export interface ScopeRun {
  workflowId: string;
  runId: string;
  type: string;
}

const quoted = (ids: string[]): string => ids.map((id) => `'${id}'`).join(', ');

/** Visibility queries for the scope, 50 ids each (the ids are ID_PATTERN-checked, so quoting is safe). */
export function scopeQueries(
  scope: IncidentScope | undefined,
  integrationIds: string[],
  tenantIds: string[],
  extra: string,
): string[] {
  const queries: string[] = [];
  for (let i = 0; i < integrationIds.length; i += 50)
    queries.push(`IntegrationId IN (${quoted(integrationIds.slice(i, i + 50))})${extra}`);
  // Tenant-wide workflows need not carry an IntegrationId; an integration or vendor scope must not touch them.
  if (scope === 'all' || scope?.startsWith('tenant:')) {
    for (let i = 0; i < tenantIds.length; i += 50)
      queries.push(`TenantId IN (${quoted(tenantIds.slice(i, i + 50))})${extra}`);
  }
  return queries;
}

/**
 * Runs matching the queries, each run once (a tenant query may find what an integration query found), at most
 * `limit`.
 */
export async function listRuns(client: Client, queries: string[], limit: number): Promise<ScopeRun[]> {
  const seen = new Map<string, ScopeRun>();
  for (const query of queries) {
    for await (const wf of client.workflow.list({ query })) {
      if (seen.size >= limit) return [...seen.values()];
      seen.set(`${wf.workflowId}/${wf.runId}`, { workflowId: wf.workflowId, runId: wf.runId, type: wf.type });
    }
  }
  return [...seen.values()];
}

export interface CancelReport {
  /** Workflow ids a cancellation was requested for. */
  cancelled: string[];
  /** Closed between listing and cancelling: nothing left to stop. */
  alreadyClosed: string[];
  /** `<workflowId>: <error>` for each that could not be cancelled after the attempts. */
  notCancelled: string[];
}

/**
 * Requests cancellation of each workflow (by id: a delta sync that continued as new is cancelled in
 * its latest run), `inFlight` at a time, each tried `attempts` times. Nothing is swallowed: every
 * failure is in the report.
 */
export async function cancelEach(
  runs: ScopeRun[],
  cancel: (workflowId: string) => Promise<unknown>,
  options: { inFlight: number; attempts: number; backoffMs: number },
): Promise<CancelReport> {
  const report: CancelReport = { cancelled: [], alreadyClosed: [], notCancelled: [] };
  const limit = pLimit(options.inFlight);
  await Promise.all(
    runs.map((r) =>
      limit(async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            await cancel(r.workflowId);
            report.cancelled.push(r.workflowId);
            return;
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) {
              report.alreadyClosed.push(r.workflowId);
              return;
            }
            if (attempt >= options.attempts) {
              const reason = err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error';
              report.notCancelled.push(`${r.workflowId}: ${reason.slice(0, 200)}`);
              return;
            }
            await new Promise((resolve) => setTimeout(resolve, options.backoffMs * attempt));
          }
        }
      }),
    ),
  );
  for (const list of Object.values(report)) list.sort();
  return report;
}
