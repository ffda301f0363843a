/**
 * Bulk Data files, one activity each: streamed through the vendor door line by line (never a whole file in
 * memory), output lines stored in batches through the shared store step, deleted-file lines applied as
 * tombstones, error-file lines reduced to issue codes. After each committed batch the activity heartbeats
 * the last line it accounted for and its counts so far; a retried attempt (a worker killed mid-file)
 * downloads again, skips those lines and goes on, so every line is stored once and counted once.
 */
import { Context } from '@temporalio/activity';
import { isResourceType } from '../lib/domain.js';
import type { ResourceType } from '../lib/domain.js';
import { BulkFileExpiredError, VendorHttpError } from '../lib/errors/index.js';
import type { Integration } from '../lib/integrations/repository.js';
import { noteMalformed, outcomeIssueCodes, parseDeletedLine, parseOutputLine } from '../lib/sync/bulk-lines.js';
import { SealedBatch, applyDeletions } from '../lib/sync/store-resources.js';
import type { Deletion } from '../lib/store/records.js';
import type { NdjsonLine } from '../lib/vendors/ndjson-lines.js';
import { activityAuditContext } from './audit-context.js';
import type {
  BulkDeletedFileInput,
  BulkDeletedFileResult,
  BulkErrorFileResult,
  BulkOutputFileInput,
  BulkOutputFileResult,
} from './bulk-types.js';
import type { BulkExportActivityDeps } from './deps.js';
import { assertTypeAllowed, integrationOfTenant } from './integration-policy.js';

/** While skipping already-committed lines, heartbeat this often so a long skip is not taken for a dead worker. */
const SKIP_HEARTBEAT_LINES = 10_000;
/** The last heartbeat is repeated this often while a file is read (the preset's heartbeat timeout is 30 s). */
const KEEP_ALIVE_MS = 5_000;

type FileInput = Omit<BulkOutputFileInput, 'resourceType'>;

/** The last heartbeat of an earlier attempt: lines up to `line` are accounted for in `result`. */
interface Resume<R> {
  line: number;
  result: R;
}

export function createBulkFileActivities(deps: BulkExportActivityDeps) {
  /**
   * Streams one file, resuming after an earlier attempt's last heartbeat. `each` sees every line past it;
   * `commit` runs when `each` asks and at the end, adding what it stored to every result it is given, and is
   * followed by a heartbeat of the line reached. One commit runs while the next batch is read (the database
   * and the download overlap); commits stay in file order, and a heartbeat carries the counts and the
   * malformed lines as they were when its batch was cut, so a resumed attempt counts nothing twice.
   */
  async function readFile<R extends { lines: number }>(
    input: FileInput,
    integration: Integration,
    purpose: string,
    fresh: R,
    /** True when a batch is full; a promise of it where the line had to wait (a new batch opening). */
    each: (line: NdjsonLine, result: R) => boolean | Promise<boolean>,
    commit: (results: readonly R[], lastLine: number) => Promise<void>,
  ): Promise<R> {
    const activity = Context.current();
    const resume = activity.info.heartbeatDetails as Resume<R> | undefined;
    const result = resume?.result ?? fresh;
    const skip = resume?.line ?? 0;
    // The SDK may send a heartbeat later than asked, and `result` moves on meanwhile: each one is a copy. The
    // last one is repeated on a timer, so a slow vendor (bounded by the door's idle timeout) is not a dead worker.
    let last: Resume<R> = { line: skip, result: structuredClone(result) };
    const beat = (next: Resume<R>): void => {
      last = next;
      activity.heartbeat(last);
    };
    beat(last);
    const keepAlive = setInterval(() => activity.heartbeat(last), KEEP_ALIVE_MS);
    let inflight: Promise<void> | undefined;
    /** Cuts a batch at `line`: stored in the background, then heartbeated as of that line. */
    const cut = (line: number): Promise<void> => {
      const snapshot: Resume<R> = { line, result: structuredClone(result) };
      snapshot.result.lines = line;
      const stored = commit([result, snapshot.result], line).then(() => {
        result.lines = Math.max(result.lines, line);
        beat(snapshot);
      });
      stored.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      return stored;
    };
    const ctx = { correlationId: activityAuditContext().correlationId, purpose };
    const options = {
      withToken: input.requiresAccessToken,
      fileHosts: integration.bulkFileHosts,
      maxLineBytes: deps.maxLineBytes,
      signal: activity.cancellationSignal,
    };
    try {
      await deps.vendors.streamLines(input.integrationId, input.url, ctx, options, async (lines) => {
        let reached = skip;
        for await (const line of lines) {
          if (line.number <= skip) {
            if (line.number % SKIP_HEARTBEAT_LINES === 0) beat(last);
            continue;
          }
          reached = line.number;
          const full = each(line, result);
          if (full === true || (full !== false && (await full))) {
            await inflight;
            inflight = cut(reached);
          }
        }
        await inflight;
        await cut(reached);
      });
    } catch (err) {
      // A failed download or store: let a commit under way finish (or fail) before the attempt ends.
      await inflight?.catch(() => undefined);
      if (err instanceof VendorHttpError && (err.status === 404 || err.status === 410))
        throw new BulkFileExpiredError(input.fileIndex, err.status);
      throw err;
    } finally {
      clearInterval(keepAlive);
    }
    return result;
  }

  return {
    /** One output file of one type: every well-formed line stored, every malformed one counted by number. */
    async bulkOutputFile(input: BulkOutputFileInput): Promise<BulkOutputFileResult> {
      const ctx = activityAuditContext();
      const integration = await integrationOfTenant(deps.directory, input);
      assertTypeAllowed(integration, input.resourceType);
      const scope = { ...input, purpose: integration.purpose };
      // The batch being filled: each resource is sealed (minimised, encrypted) as its line is read.
      let batch: SealedBatch | undefined;
      let firstLine = 0;
      const fresh: BulkOutputFileResult = {
        lines: 0,
        fetched: 0,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        dropped: 0,
        malformed: { count: 0, lines: [] },
      };
      return readFile(
        input,
        integration,
        'bulk.file',
        fresh,
        (line, result) => {
          if (line.text !== undefined && line.text.trim() === '') return false;
          const resource =
            line.text === undefined ? undefined : parseOutputLine(line.text, input.resourceType, input.transactionTime);
          if (!resource) {
            noteMalformed(result.malformed, line.number);
            return false;
          }
          // The line's bytes are read by add(), before the next line is asked for.
          resource.raw = line.bytes;
          const add = (into: SealedBatch): boolean => {
            into.add(resource);
            return into.size >= deps.batchSize;
          };
          if (batch) return add(batch);
          firstLine = line.number;
          return SealedBatch.open(deps, ctx, scope).then((opened) => add((batch = opened)));
        },
        async (results, lastLine) => {
          const full = batch;
          batch = undefined;
          if (!full || full.size === 0) return;
          const stored = await full.store({ bulkFile: input.fileIndex, lines: `${firstLine}-${lastLine}` });
          for (const result of results) {
            result.fetched += full.size;
            result.inserted += stored.inserted;
            result.updated += stored.updated;
            result.unchanged += stored.unchanged;
            result.dropped += stored.dropped;
          }
        },
      );
    },

    /** An error file: its OperationOutcomes counted by issue code; their text (which can quote data) is not read. */
    async bulkErrorFile(input: FileInput): Promise<BulkErrorFileResult> {
      const integration = await integrationOfTenant(deps.directory, input);
      const fresh: BulkErrorFileResult = { lines: 0, byCode: {}, malformed: { count: 0, lines: [] } };
      return readFile(
        input,
        integration,
        'bulk.error_file',
        fresh,
        (line, result) => {
          if (line.text !== undefined && line.text.trim() === '') return false;
          const codes = line.text === undefined ? undefined : outcomeIssueCodes(line.text);
          if (!codes) noteMalformed(result.malformed, line.number);
          for (const code of codes ?? []) result.byCode[code] = (result.byCode[code] ?? 0) + 1;
          return false;
        },
        async () => undefined,
      );
    },

    /** A deleted file: each listed resource of the export's types becomes a tombstone at the transactionTime. */
    async bulkDeletedFile(input: BulkDeletedFileInput): Promise<BulkDeletedFileResult> {
      const ctx = activityAuditContext();
      const integration = await integrationOfTenant(deps.directory, input);
      for (const type of input.types) assertTypeAllowed(integration, type);
      const pending = new Map<ResourceType, Deletion[]>();
      let waiting = 0;
      const fresh: BulkDeletedFileResult = { lines: 0, byType: {}, ignored: 0, malformed: { count: 0, lines: [] } };
      return readFile(
        input,
        integration,
        'bulk.deleted_file',
        fresh,
        (line, result) => {
          if (line.text !== undefined && line.text.trim() === '') return false;
          const listed = line.text === undefined ? undefined : parseDeletedLine(line.text);
          if (!listed) {
            noteMalformed(result.malformed, line.number);
            return false;
          }
          for (const { resourceType, id } of listed) {
            if (!isResourceType(resourceType) || !input.types.includes(resourceType)) {
              result.ignored += 1;
              continue;
            }
            const list = pending.get(resourceType) ?? [];
            list.push({ resourceId: id, deletedAt: input.transactionTime });
            pending.set(resourceType, list);
            waiting += 1;
          }
          return waiting >= deps.batchSize;
        },
        async (results) => {
          const batches = [...pending];
          pending.clear();
          waiting = 0;
          for (const [resourceType, deletions] of batches) {
            const scope = { tenantId: input.tenantId, integrationId: input.integrationId, resourceType };
            const counts = await applyDeletions(deps, ctx, scope, deletions, 'bulk-deleted', {
              bulkFile: input.fileIndex,
            });
            for (const result of results) {
              const seen = result.byType[resourceType] ?? { listed: 0, removed: 0, tombstoned: 0 };
              seen.listed += deletions.length;
              seen.removed += counts.removed;
              seen.tombstoned += counts.tombstoned;
              result.byType[resourceType] = seen;
            }
          }
        },
      );
    },
  };
}
