import type { Command } from 'commander';
import { getIntegration } from '../../lib/integrations/repository.js';
import type { nightlySync } from '../../workflows/nightly-sync.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';
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
        const client = await ctx.temporal();
        const handle = await startSync(
          client,
          ctx.config.TEMPORAL_TASK_QUEUE,
          { tenantId: integration.tenantId, integrationId: integration.id, vendor: integration.vendor },
          { full: opts.full },
        );
        print(`started ${handle.workflowId}`);
        if (opts.wait) printReport(handle.workflowId, await waitWithProgress(handle));
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
        const reports = await Promise.all(handles.map((h) => h.result()));
        reports.forEach((report, i) => printReport(workflowIds[i]!, report));
      }),
    );
  sync
    .command('status')
    .description('progress of a running or finished sync')
    .argument('<workflowId>', 'e.g. sync/<tenant>/<integration>/<time>')
    .action(async (workflowId: string) =>
      withContext(async (ctx) => {
        const client = await ctx.temporal();
        printJson(await syncProgress(client.workflow.getHandle(workflowId)));
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
