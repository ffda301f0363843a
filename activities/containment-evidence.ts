/**
 * The evidence step of breach containment (containment.ts, preserveIncidentEvidence): the scope's recent
 * sync run histories, fetched from Temporal one by one with a heartbeat each, handed to the evidence
 * package (lib/incidents/evidence.ts: a signed checkpoint, the audit segment, the histories, a manifest).
 * Apart from the other steps because it is the one that reads workflow histories.
 */
import { Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { AuditContext } from '../lib/audit/chain.js';
import type { EvidencePackage, HistoryEvidence } from '../lib/incidents/evidence.js';
import { preserveEvidence } from '../lib/incidents/evidence.js';
import type { IncidentScope, ScopedIntegration } from '../lib/incidents/scope.js';
import type { ContainmentActivityDeps } from './deps.js';
import { listRuns, scopeQueries } from './scope-workflows.js';

/** Our sync runs of these integrations matching a visibility query (evidence: their histories), most recent first. */
async function syncRunsOf(
  client: Awaited<ReturnType<ContainmentActivityDeps['temporal']>>,
  integrationIds: string[],
  extra: string,
  limit: number,
) {
  return listRuns(
    client,
    scopeQueries(undefined, integrationIds, [], ` AND WorkflowType = 'nightlySync'${extra}`),
    limit,
  );
}

/** Preserves the incident's evidence (idempotent: see lib/incidents/evidence.ts). */
export async function preserveScopeEvidence(
  deps: ContainmentActivityDeps,
  incidentId: string,
  scope: IncidentScope,
  affected: ScopedIntegration[],
  audit: AuditContext,
): Promise<EvidencePackage> {
  const client = await deps.temporal();
  const tenants = [...new Set(affected.map((i) => i.tenantId))];
  async function* histories(): AsyncIterable<HistoryEvidence> {
    for (const run of await syncRunsOf(
      client,
      affected.map((i) => i.integrationId),
      '',
      200,
    )) {
      Context.current().heartbeat();
      const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      yield { ...run, json: historyToJSON(temporal.api.history.v1.History.create(history)) };
    }
  }
  return preserveEvidence(
    {
      pool: deps.pool,
      signer: deps.signer,
      anchor: deps.anchor,
      evidenceDir: deps.evidenceDir,
      checkpointWriter: deps.checkpointWriter,
    },
    { id: incidentId, scope, ...(tenants.length === 1 && scope !== 'all' ? { tenantId: tenants[0]! } : {}) },
    histories(),
    audit,
  );
}
