/**
 * Waits for a sync while showing its progress (cli-progress: a live bar on a terminal, a line
 * every few seconds otherwise, so CI logs stay readable).
 */
import cliProgress from 'cli-progress';
import type { WorkflowHandle } from '@temporalio/client';
import type { SyncReport } from '../workflows/nightly-sync.js';
import { syncProgress } from './sync-client.js';
import { print } from './output.js';

export async function waitWithProgress(handle: WorkflowHandle, pollMs = 1_000): Promise<SyncReport> {
  const interactive = Boolean(process.stdout.isTTY);
  const bar = new cliProgress.SingleBar(
    {
      format:
        '  {bar} {value}/{total} types | {fetched} fetched, {inserted} new, {updated} updated | {status} {current}',
      hideCursor: true,
      noTTYOutput: !interactive,
      notTTYSchedule: 5_000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const result = handle.result() as Promise<SyncReport>;
  let finished = false;
  void result.finally(() => (finished = true)).catch(() => undefined);
  try {
    while (!finished) {
      const progress = await syncProgress(handle).catch(() => undefined);
      if (progress && progress.types.length > 0) {
        const payload = {
          fetched: progress.totals.fetched,
          inserted: progress.totals.inserted,
          updated: progress.totals.updated,
          status: progress.status,
          current: progress.currentResourceType ?? '',
        };
        const done = progress.types.filter((t) => t.done).length;
        if (!started) {
          bar.start(progress.types.length, done, payload);
          started = true;
        } else bar.update(done, payload);
      }
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, pollMs))]);
    }
    const report = await result;
    if (started)
      bar.update(report.types.filter((t) => t.done).length, { ...report.totals, status: report.outcome, current: '' });
    return report;
  } finally {
    if (started) bar.stop();
  }
}

export function printReport(workflowId: string, report: SyncReport): void {
  print(`sync ${workflowId}: ${report.outcome}`);
  for (const t of report.types) {
    if (t.skippedReason) {
      print(
        `  ${t.resourceType.padEnd(20)} SKIPPED: ` +
          `${t.skippedReason}${t.skippedDetail ? ` (${t.skippedDetail})` : ''}; its checkpoint is unchanged`,
      );
      continue;
    }
    print(
      `  ${t.resourceType.padEnd(20)} fetched ${t.fetched}, new ${t.inserted}, ` +
        `updated ${t.updated}, unchanged ${t.unchanged}, deleted ${t.deleted ?? 0} (${t.pages} pages)`,
    );
    if (t.incompleteReason) {
      print(
        `  ${''.padEnd(20)} INCOMPLETE: ${t.incompleteReason}` +
          `${t.incompleteDetail ? ` (${t.incompleteDetail})` : ''}; its checkpoint is unchanged, the next run reads it again`,
      );
    }
  }
  print(
    `  total: fetched ${report.totals.fetched}, new ${report.totals.inserted}, ` +
      `updated ${report.totals.updated}, unchanged ${report.totals.unchanged}`,
  );
}
