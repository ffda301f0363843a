/**
 * `ehrctl writes`: the write-back outbox. Lists and shows ids, element names, statuses and the vendor's status and
 * OperationOutcome code — never values; retries a refused change, cancels a pending or refused one (audited).
 */
import type { Command } from 'commander';
import { InvalidArgumentError, NotFoundError } from '../../lib/errors/index.js';
import { cancelChange, retryChange } from '../../lib/writeback/operations.js';
import type { OutboxChange, OutboxStatus } from '../../lib/writeback/outbox-repository.js';
import { OUTBOX_STATUSES, getOutboxChange, listOutboxChanges } from '../../lib/writeback/outbox-repository.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

function parseStatus(status: string | undefined): OutboxStatus | undefined {
  if (status === undefined) return undefined;
  if (!(OUTBOX_STATUSES as readonly string[]).includes(status))
    throw new InvalidArgumentError('--status', `one of ${OUTBOX_STATUSES.join(', ')}`);
  return status as OutboxStatus;
}

function vendorOf(c: OutboxChange): string {
  if (c.vendorStatus === null && c.vendorOutcomeCode === null) return '-';
  return [c.vendorStatus ?? '', c.vendorOutcomeCode ?? ''].filter((v) => v !== '').join(' ');
}

function row(c: OutboxChange): Record<string, string> {
  return {
    id: c.id,
    integration: c.integrationId,
    record: `${c.resourceType}/${c.resourceId}`,
    kind: c.kind,
    elements: c.changedElements.join(','),
    status: c.status,
    vendor: vendorOf(c),
    queued: c.createdAt,
  };
}

export function registerWriteCommands(program: Command): void {
  const writes = program
    .command('writes')
    .description('the write-back outbox: local changes on their way to the vendor (ids and element names only)');
  writes
    .command('list')
    .description('changes, oldest first')
    .option('--integration <id>', 'only this integration')
    .option('--status <status>', `only this status (${OUTBOX_STATUSES.join(', ')})`)
    .option('--json', 'machine-readable output')
    .action(async (opts: { integration?: string; status?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const status = parseStatus(opts.status);
        const changes = await listOutboxChanges(await ctx.db(), {
          ...(opts.integration ? { integrationId: opts.integration } : {}),
          ...(status ? { status } : {}),
        });
        if (opts.json) return printJson(changes);
        if (changes.length === 0) return print('no changes');
        table(changes.map(row));
      }),
    );
  writes
    .command('show <id>')
    .description("one change: its record, element names, status, attempts and the vendor's answer")
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const change = await getOutboxChange(await ctx.db(), id);
        if (!change) throw new NotFoundError('outbox change', id);
        if (opts.json) return printJson(change);
        const lines: Array<[string, string]> = [
          ['change', change.id],
          ['integration', change.integrationId],
          ['record', `${change.resourceType}/${change.resourceId}`],
          ['kind', `${change.kind} (${change.origin}, by ${change.requestedBy})`],
          ['elements', change.changedElements.join(', ')],
          ['base version', change.baseVersionId ?? '-'],
          ['status', change.status],
          ['attempts', String(change.attempts)],
          ['vendor answer', vendorOf(change)],
          ['vendor record', change.vendorResourceId ? `${change.vendorResourceId} v${change.vendorVersionId}` : '-'],
          ['conflict', change.conflictId ?? '-'],
          ['queued', change.createdAt],
          ['sent', change.sentAt ?? '-'],
        ];
        for (const [k, v] of lines) print(`${k.padEnd(14)} ${v}`);
      }),
    );
  writes
    .command('retry <id>')
    .description('send a refused change again (audited; wakes the write-back)')
    .action(async (id: string) =>
      withContext(async (ctx) => {
        const notifier = temporalOutboxNotifier(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE);
        const change = await retryChange(await ctx.db(), notifier, id, ctx.audit);
        print(`change ${change.id} is pending again`);
      }),
    );
  writes
    .command('cancel <id>')
    .description('cancel a pending or refused change (audited; the change is kept, never deleted)')
    .action(async (id: string) =>
      withContext(async (ctx) => {
        const change = await cancelChange(await ctx.db(), id, ctx.audit);
        print(`change ${change.id} cancelled`);
      }),
    );
}
