/**
 * `ehrctl reconcile conflicts | conflict <id> | resolve <id>`: what the authority policy could not decide, waiting
 * for a person (lib/writeback/conflicts.ts, workflows/conflict-resolution.ts). Lists and shows carry ids, element
 * names, reasons, statuses and the timeline — never values; `conflict <id> --decode` shows both sides of the
 * disputed elements through the codec server with the caller's token (decode role; audited there). `resolve` sends
 * the workflow's `resolve` update (ids and element paths only) and says what the resolution did.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, NotFoundError } from '../../lib/errors/index.js';
import type { ConflictRow } from '../../lib/writeback/conflict-repository.js';
import { conflictTimeline, getConflict, listConflicts } from '../../lib/writeback/conflict-repository.js';
import type { ConflictDiff } from '../../lib/writeback/conflicts.js';
import type { ResolveRequest } from '../../workflows/conflict-resolve-request.js';
import { parseFieldsOption } from '../../workflows/conflict-resolve-request.js';
import { remoteConflictDiff } from '../codec-client.js';
import { codecServerAccess } from './codec-access.js';
import { resolveConflict } from '../conflict-client.js';
import type { CliContext } from '../context.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

interface DecodeOptions {
  decode?: boolean;
  token?: string;
  codecUrl?: string;
  codecCa?: string;
  json?: boolean;
}

function resolutionText(c: ConflictRow): string {
  if (!c.resolution) return '';
  return Object.entries(c.resolution)
    .map(([element, side]) => `${element}=${side}`)
    .join(',');
}

async function decodedDiff(ctx: CliContext, id: string, opts: DecodeOptions): Promise<ConflictDiff> {
  return (await remoteConflictDiff(codecServerAccess(ctx, opts), id)) as ConflictDiff;
}

/** Registers the conflict commands on the `reconcile` group (created here when the group does not exist yet). */
export function registerReconcileConflictCommands(program: Command): void {
  const reconcile =
    program.commands.find((c) => c.name() === 'reconcile') ??
    program.command('reconcile').description('compare stored records with the vendor and decide');

  reconcile
    .command('conflicts')
    .description('conflicts waiting for a person (ids, element names and reasons; never values)')
    .option('--integration <id>', 'only this integration')
    .option('--tenant <id>', 'only this tenant')
    .option('--all', 'resolved and cancelled ones too')
    .option('--json', 'machine-readable output')
    .action(async (opts: { integration?: string; tenant?: string; all?: boolean; json?: boolean }) =>
      withContext(async (ctx) => {
        const conflicts = await listConflicts(await ctx.db(), {
          integrationId: opts.integration,
          tenantId: opts.tenant,
          status: opts.all ? 'all' : 'open',
        });
        if (opts.json) return printJson(conflicts);
        if (conflicts.length === 0) return print(opts.all ? 'no conflicts' : 'no open conflicts');
        table(
          conflicts.map((c) => ({
            id: c.id,
            integration: c.integrationId,
            record: `${c.resourceType}/${c.resourceId}`,
            reason: c.reason,
            elements: c.elements.join(','),
            status: c.status,
            opened: c.openedAt,
            ...(opts.all ? { resolution: resolutionText(c) } : {}),
          })),
        );
      }),
    );

  reconcile
    .command('conflict <id>')
    .description('one conflict: ids, element names, reason, status and timeline (--decode: both sides, audited)')
    .option('--decode', 'both sides of the disputed elements, from the codec server (decode role; audited there)')
    .option('--token <jwt>', 'bearer token for the codec server (default: EHR_CODEC_TOKEN; dev: `ehrctl dev token`)')
    .option('--codec-url <url>', 'codec server URL (default: EHR_CODEC_URL or the dev stack)')
    .option('--codec-ca <file>', 'extra CA certificate to trust for the codec server (default: EHR_CODEC_CA)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: DecodeOptions) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const conflict = await getConflict(db, id);
        if (!conflict) throw new NotFoundError('conflict', id);
        const timeline = await conflictTimeline(db, id);
        const diff = opts.decode ? await decodedDiff(ctx, id, opts) : undefined;
        if (opts.json)
          return printJson({ ...conflict, timeline, ...(diff ? { local: diff.local, remote: diff.remote } : {}) });
        print(`conflict ${conflict.id}: ${conflict.status} (${conflict.reason}, from ${conflict.source})`);
        print(`record ${conflict.resourceType}/${conflict.resourceId} of integration ${conflict.integrationId}`);
        print(`elements: ${conflict.elements.join(', ')}`);
        if (conflict.changeId) print(`opened by outbox change ${conflict.changeId}`);
        if (conflict.runId) print(`opened by reconcile run ${conflict.runId}`);
        if (conflict.resolution) print(`resolved by ${conflict.resolvedBy}: ${resolutionText(conflict)}`);
        print('timeline:');
        for (const e of timeline)
          print(`  ${e.at}  ${e.action}${e.outcome === 'failure' ? ' (refused)' : ''}  ${e.actor}`);
        if (!diff) {
          print('(values not shown; --decode to see both sides through the codec server)');
          return;
        }
        print('decoded by the codec server (this decode is audited):');
        for (const element of diff.elements) {
          print(`  ${element}`);
          print(`    local:  ${JSON.stringify(diff.local[element] ?? null)}`);
          print(`    remote: ${JSON.stringify(diff.remote[element] ?? null)}`);
        }
      }),
    );

  reconcile
    .command('resolve <id>')
    .description('decide a conflict: take one side for every element, or decide element by element')
    .option('--take <side>', 'local or remote, for every disputed element')
    .option('--fields <decisions>', 'element=local|remote for each disputed element, comma-separated')
    .requiredOption('--by <identity>', 'who decides (recorded on the conflict and in the audit trail)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { take?: string; fields?: string; by: string; json?: boolean }) =>
      withContext(async (ctx) => {
        if ((opts.take === undefined) === (opts.fields === undefined))
          throw new InvalidArgumentError('reconcile resolve', 'give exactly one of --take or --fields');
        let request: ResolveRequest;
        if (opts.take !== undefined) {
          if (opts.take !== 'local' && opts.take !== 'remote')
            throw new InvalidArgumentError('--take', 'local or remote');
          request = { take: opts.take, by: opts.by };
        } else {
          const fields = parseFieldsOption(opts.fields!);
          if (typeof fields === 'string') throw new InvalidArgumentError('--fields', fields);
          request = { fields, by: opts.by };
        }
        const outcome = await resolveConflict(await ctx.db(), await ctx.temporal(), id, request, ctx.audit, {
          taskQueue: ctx.config.TEMPORAL_TASK_QUEUE,
        });
        if (opts.json) return printJson(outcome);
        const decisions = Object.entries(outcome.resolution)
          .map(([element, side]) => `${element}=${side}`)
          .join(', ');
        print(`conflict ${outcome.conflictId} resolved by ${outcome.resolvedBy}: ${decisions}`);
        if (outcome.tombstoned) print('the record is gone at the vendor: its local copy was removed (tombstoned)');
        if (outcome.recreate)
          print(`the record is gone at the vendor: it will be created again (change ${outcome.changeId})`);
        else if (outcome.changeId) print(`write-back queued: change ${outcome.changeId}`);
        const remote = Object.entries(outcome.resolution).filter(([, side]) => side === 'remote');
        if (remote.length > 0 && !outcome.tombstoned)
          print(`local copy took the vendor's current ${remote.map(([e]) => e).join(', ')}`);
        if (outcome.cancelledChangeIds.length > 0)
          print(`superseded changes cancelled: ${outcome.cancelledChangeIds.join(', ')}`);
      }),
    );
}
