/**
 * Reconciliation over a Bulk Data export: one output file per activity, streamed through the vendor door line by
 * line (never the whole file in memory), compared and decided in batches with the same step a search page uses.
 * After each committed batch the activity heartbeats the last line and the counts so far; a retried attempt (a
 * worker killed mid-file) downloads again and skips those lines, so every line is decided once and counted once.
 * A malformed line is counted (by its count only); its record is read by id with the other unlisted ones.
 */
import { Context } from '@temporalio/activity';
import type { ResourceType } from '../lib/domain.js';
import type { RemoteCopy } from '../lib/reconcile/compare.js';
import { reconcileBatch } from '../lib/reconcile/compare.js';
import { markSeen } from '../lib/reconcile/repository.js';
import type { BatchTally } from '../lib/reconcile/tally.js';
import { addTally, emptyTally } from '../lib/reconcile/tally.js';
import { parseOutputLine } from '../lib/sync/bulk-lines.js';
import { reconcileBatchScope } from './reconcile-scope.js';
import { activityAuditContext } from './audit-context.js';
import type { ReconcileActivityDeps } from './deps.js';

export interface ReconcileBulkFileInput {
  runId: string;
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  /** The file's place in the manifest (how reports name it: its URL may carry a signature). */
  fileIndex: number;
  url: string;
  requiresAccessToken: boolean;
  transactionTime: string;
  batchSize: number;
}

/** Longest NDJSON line accepted (as the sync's bulk files); a longer one is counted malformed. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** The last heartbeat is repeated this often while a file is read (the preset's heartbeat timeout is 30 s). */
const KEEP_ALIVE_MS = 5_000;

interface Resume {
  line: number;
  tally: BatchTally;
}

export function createReconcileBulkActivities(deps: ReconcileActivityDeps) {
  return {
    async reconcileBulkFile(input: ReconcileBulkFileInput): Promise<BatchTally> {
      const ctx = activityAuditContext();
      const { integration, scope, policy } = await reconcileBatchScope(deps, input);
      const activity = Context.current();
      const resume = activity.info.heartbeatDetails as Resume | undefined;
      const tally = resume?.tally ?? emptyTally();
      const skip = resume?.line ?? 0;
      let last: Resume = { line: skip, tally: structuredClone(tally) };
      const beat = (line: number) => {
        last = { line, tally: structuredClone(tally) };
        activity.heartbeat(last);
      };
      beat(skip);
      const keepAlive = setInterval(() => activity.heartbeat(last), KEEP_ALIVE_MS);
      let batch: RemoteCopy[] = [];
      let batchStart = 0;
      const flush = async (line: number) => {
        if (batch.length > 0) {
          const remote = batch;
          const batchKey = `${input.resourceType}:file:${input.fileIndex}:${batchStart}`;
          batch = [];
          await markSeen(
            deps.pool,
            input.runId,
            input.resourceType,
            remote.map((r) => r.id),
          );
          addTally(tally, await reconcileBatch(deps, ctx, { scope, runId: input.runId, policy, remote, batchKey }));
        }
        beat(line);
      };
      const call = { correlationId: ctx.correlationId, purpose: 'reconcile.bulk_file' };
      const options = {
        withToken: input.requiresAccessToken,
        fileHosts: integration.bulkFileHosts,
        maxLineBytes: MAX_LINE_BYTES,
        signal: activity.cancellationSignal,
      };
      try {
        await deps.vendors.streamLines(input.integrationId, input.url, call, options, async (lines) => {
          let reached = skip;
          for await (const line of lines) {
            if (line.number <= skip) continue;
            reached = line.number;
            if (line.text !== undefined && line.text.trim() === '') continue;
            const resource =
              line.text === undefined
                ? undefined
                : parseOutputLine(line.text, input.resourceType, input.transactionTime);
            if (!resource) {
              tally.decisions.malformedLines += 1;
              continue;
            }
            if (batch.length === 0) batchStart = line.number;
            batch.push({
              id: resource.id,
              versionId: resource.versionId,
              lastUpdated: resource.lastUpdated,
              resource: resource.resource,
            });
            if (batch.length >= input.batchSize) await flush(reached);
          }
          await flush(reached);
        });
      } finally {
        clearInterval(keepAlive);
      }
      return tally;
    },
  };
}
