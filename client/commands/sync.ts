import type { Command } from 'commander';
import { getIntegration } from '../../lib/integrations/repository.js';
import type { nightlySync } from '../../workflows/nightly-sync.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';
import { ClientIdPendingError } from '../../lib/errors/index.js';
import { closedSyncFailure, failureLine, syncFailureOf } from '../sync-failure.js';
import { startSync, syncProgress } from '../sync-client.js';
import { printReport, waitWithProgress } from '../sync-progress.js';

export function registerSyncCommands(program: Command): void {
  const sync = program.command('sync').description('run and inspect syncs');
  sync
    .command('run')
    .description('start a sync of one integration now')
    .requiredOption('--integration <id>', 'integration id')
    .option('--full', 'ignore checkpoints and fetch everything')
    .option('--wait', 'wait for the result, showing progress')
    .action(async (opts: { integration: string; full?: boolean; wait?: boolean }) =>
      withContext(async (ctx) => {
        const integration = await getIntegration(await ctx.db(), opts.integration);
        // Refused here rather than as a failed run: nothing can be asked of the vendor without a client id.
        if (integration.status === 'pending-client-id') throw new ClientIdPendingError(integration.id);
        const client = await ctx.temporal();
        const handle = await startSync(
          client,
          ctx.config.TEMPORAL_TASK_QUEUE,
          { tenantId: integration.tenantId, integrationId: integration.id, vendor: integration.vendor },
          { full: opts.full },
        );
        print(`started ${handle.workflowId}`);
        if (!opts.wait) return;
        try {
          printReport(handle.workflowId, await waitWithProgress(handle));
        } catch (err) {
          const failure = syncFailureOf(err);
          if (!failure) throw err;
          print(failureLine(handle.workflowId, failure));
          process.exitCode = failure.exitCode;
        }
      }),
    );
  sync
    .command('wait')
    .description('wait for running syncs (e.g. several started side by side) and print their reports')
    .argument('<workflowIds...>', 'e.g. sync/<tenant>/<integration>/<time>')
    .action(async (workflowIds: string[]) =>
      withContext(async (ctx) => {
        const client = await ctx.temporal();
        const handles = workflowIds.map((id) => client.workflow.getHandle<typeof nightlySync>(id));
        const reports = await Promise.allSettled(handles.map((h) => h.result()));
        reports.forEach((r, i) => {
          if (r.status === 'fulfilled') return printReport(workflowIds[i]!, r.value);
          const failure = syncFailureOf(r.reason);
          if (!failure) throw r.reason;
          print(failureLine(workflowIds[i]!, failure));
          process.exitCode = Math.max(Number(process.exitCode ?? 0), failure.exitCode);
        });
      }),
    );
  sync
    .command('status')
    .description('progress of a running or finished sync; a failed one: its cause and stable error code')
    .argument('<workflowId>', 'e.g. sync/<tenant>/<integration>/<time>')
    .action(async (workflowId: string) =>
      withContext(async (ctx) => {
        const client = await ctx.temporal();
        const handle = client.workflow.getHandle(workflowId);
        const failure = await closedSyncFailure(handle);
        if (failure) {
          printJson({ workflowId, status: failure.status, error: { code: failure.code, message: failure.message } });
          process.exitCode = failure.exitCode;
          return;
        }
        printJson(await syncProgress(handle));
      }),
    );
  for (const [name, description] of [
    ['pause', 'pause a running sync after its current page'],
    ['resume', 'resume a paused sync'],
    ['cancel', 'stop a sync after its current page (the checkpoint stays where it was)'],
  ] as const) {
    sync
      .command(name)
      .description(description)
      .argument('<workflowId>')
      .option('--reason <text>', 'recorded with the signal (no patient data)')
      .action(async (workflowId: string, opts: { reason?: string }) =>
        withContext(async (ctx) => {
          const client = await ctx.temporal();
          await client.workflow
            .getHandle(workflowId)
            .signal(name, { by: ctx.audit.actor, reason: opts.reason?.slice(0, 200) });
          print(`${name} sent to ${workflowId}`);
        }),
      );
  }
}
