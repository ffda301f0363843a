import type { Command } from 'commander';
import { getIntegration } from '../../lib/integrations/repository.js';
import { deliverySummary } from '../../lib/webhooks/deliveries.js';
import { deltaSyncWorkflowId, pendingNotifications } from '../delta-sync-client.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';

/** `ehrctl webhooks status`: the delta-sync workflow's queue and last batch, and the stored deliveries. */
export function registerWebhookCommands(program: Command): void {
  const webhooks = program.command('webhooks').description('webhook intake and delta syncs');
  webhooks
    .command('status')
    .description("an integration's webhook deliveries and its delta-sync workflow (pending notifications, last batch)")
    .requiredOption('--integration <id>', 'integration id')
    .option('--json', 'machine-readable output')
    .action(async (opts: { integration: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const integration = await getIntegration(db, opts.integration);
        const stored = await deliverySummary(db, integration.id);
        const workflowId = deltaSyncWorkflowId({ tenantId: integration.tenantId, integrationId: integration.id });
        const client = await ctx.temporal();
        const workflow = await pendingNotifications(client.workflow.getHandle(workflowId)).catch(() => undefined);
        const status = {
          integrationId: integration.id,
          deliveries: stored.deliveries,
          unsignalled: stored.unsignalled,
          lastReceivedAt: stored.lastReceivedAt?.toISOString() ?? null,
          workflowId,
          workflow: workflow ?? null,
        };
        if (opts.json) return printJson(status);
        print(
          `deliveries ${status.deliveries} (unsignalled ${status.unsignalled}), ` +
            `last ${status.lastReceivedAt ?? 'never'}`,
        );
        if (!workflow) return print(`${workflowId}: not started yet (the first accepted delivery starts it)`);
        print(
          `${workflowId}: ` +
            `${workflow.count} pending ` +
            `(${workflow.resourceTypes === 'all' ? 'all types' : workflow.resourceTypes.join(', ') || '-'}), ` +
            `${workflow.received} received, ${workflow.batches} batches`,
        );
        if (workflow.lastBatch) {
          const batch = workflow.lastBatch;
          const failure = batch.failure ? `, ${batch.failure}` : '';
          print(
            `last batch: ${batch.outcome} ${batch.childWorkflowId} (${batch.notifications} notifications${failure})`,
          );
        }
      }),
    );
}
