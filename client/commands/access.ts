/**
 * `ehrctl access …`: break-glass grants to gateway consumers and their review (lib/gateway/break-glass.ts,
 * workflows/break-glass-review.ts).
 */
import os from 'node:os';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import type { BreakGlassRecord, ReviewVerdict } from '../../lib/gateway/break-glass.js';
import {
  BREAK_GLASS_REASON_CODES,
  getBreakGlassGrant,
  listBreakGlassGrants,
  revokeBreakGlassGrant,
} from '../../lib/gateway/break-glass.js';
import { requestBreakGlass, reviewBreakGlass } from '../break-glass-client.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

const defaultIdentity = (): string => `${os.userInfo().username}@${os.hostname()}`.replace(/[^A-Za-z0-9@._:+-]/g, '-');

function state(g: BreakGlassRecord, now = new Date()): string {
  if (g.revokedAt) return 'revoked';
  return g.expiresAt > now ? 'active' : 'expired';
}

function review(g: BreakGlassRecord): string {
  if (g.reviewVerdict) return `${g.reviewVerdict} (${g.reviewedBy})`;
  if (g.escalatedAt) return 'pending, escalated';
  return g.remindedAt ? 'pending, reminded' : 'pending';
}

function asJson(g: BreakGlassRecord) {
  return { ...g, state: state(g), reviewState: g.reviewVerdict ?? 'pending' };
}

export function registerAccessCommands(program: Command): void {
  const access = program.command('access').description('break-glass access to the gateway, and its review');
  const codes = Object.keys(BREAK_GLASS_REASON_CODES).join(' | ');
  access
    .command('break-glass')
    .description('grant a consumer time-boxed access beyond its scopes: audited, alerted at once, reviewed later')
    .requiredOption('--consumer <id>', 'the gateway consumer')
    .requiredOption('--scope <scopes>', 'SMART v2 scopes, space-separated, e.g. "system/Observation.rs"')
    .requiredOption('--reason-code <code>', `${codes} (ehrctl access reason-codes)`)
    .requiredOption('--reason <text>', 'why, in words (printable ASCII, no patient data)')
    .requiredOption('--minutes <n>', 'how long (at most EHR_BREAK_GLASS_MAX_MINUTES, default 240)')
    .option('--requested-by <identity>', 'who breaks the glass (default: user@host)')
    .option('--json', 'print the grant as JSON')
    .action(
      async (opts: {
        consumer: string;
        scope: string;
        reasonCode: string;
        reason: string;
        minutes: string;
        requestedBy?: string;
        json?: boolean;
      }) =>
        withContext(async (ctx) => {
          if (!/^\d{1,5}$/.test(opts.minutes)) throw new InvalidArgumentError('--minutes', 'a whole number of minutes');
          const grant = await requestBreakGlass(
            await ctx.db(),
            await ctx.temporal(),
            ctx.config,
            {
              consumerId: opts.consumer,
              scope: opts.scope,
              reasonCode: opts.reasonCode,
              reason: opts.reason,
              minutes: Number(opts.minutes),
              requestedBy: opts.requestedBy ?? defaultIdentity(),
            },
            ctx.audit,
          );
          if (opts.json) return printJson(asJson(grant));
          print(
            `break-glass ${grant.id}: ${grant.consumerId} may use ${grant.scopes.join(' ')} ` +
              `until ${grant.expiresAt.toISOString()} (${grant.reasonCode})`,
          );
          print(
            `alert raised; review: ehrctl access review ${grant.id} --appropriate|--inappropriate --note … --reviewer <not ${grant.requestedBy}>`,
          );
        }),
    );
  access
    .command('review <id>')
    .description('review a break-glass grant (four eyes: not by its requester); an inappropriate one is revoked')
    .option('--appropriate', 'the access was justified')
    .option('--inappropriate', 'the access was not justified (ends it now if still running)')
    .requiredOption('--note <text>', 'the review, in words (printable ASCII, no patient data)')
    .requiredOption('--reviewer <identity>', 'who reviews')
    .action(
      async (id: string, opts: { appropriate?: boolean; inappropriate?: boolean; note: string; reviewer: string }) =>
        withContext(async (ctx) => {
          if (Boolean(opts.appropriate) === Boolean(opts.inappropriate))
            throw new InvalidArgumentError('review', 'exactly one of --appropriate or --inappropriate');
          const verdict: ReviewVerdict = opts.appropriate ? 'appropriate' : 'inappropriate';
          const outcome = await reviewBreakGlass(
            await ctx.db(),
            await ctx.temporal(),
            id,
            { by: opts.reviewer, verdict, note: opts.note },
            ctx.audit,
          );
          print(
            `break-glass ${id} reviewed as ${outcome.verdict} by ${outcome.reviewedBy}` +
              (outcome.revoked ? '; the grant was still running and is revoked' : ''),
          );
        }),
    );
  access
    .command('reviews')
    .description('break-glass grants with their state and review')
    .option('--pending', 'only those not yet reviewed')
    .option('--json', 'JSON')
    .action(async (opts: { pending?: boolean; json?: boolean }) =>
      withContext(async (ctx) => {
        const grants = await listBreakGlassGrants(await ctx.db(), { pending: opts.pending === true });
        if (opts.json) return printJson(grants.map((g) => asJson(g)));
        if (grants.length === 0)
          return print(opts.pending ? 'no break-glass grant awaits review' : 'no break-glass grants');
        table(
          grants.map((g) => ({
            id: g.id,
            consumer: g.consumerId,
            scopes: g.scopes.join(' '),
            reason: g.reasonCode,
            'requested by': g.requestedBy,
            granted: g.grantedAt.toISOString(),
            expires: g.expiresAt.toISOString(),
            state: state(g),
            review: review(g),
          })),
        );
      }),
    );
  access
    .command('show <id>')
    .description("one grant, with the requester's reason and the review note")
    .action(async (id: string) =>
      withContext(async (ctx) => printJson(asJson(await getBreakGlassGrant(await ctx.db(), id)))),
    );
  access
    .command('revoke <id>')
    .description('end a break-glass grant now (audited)')
    .requiredOption('--reason <text>', 'why (printable ASCII)')
    .option('--as <identity>', 'who revokes (default: user@host)')
    .action(async (id: string, opts: { reason: string; as?: string }) =>
      withContext(async (ctx) => {
        const g = await revokeBreakGlassGrant(await ctx.db(), id, {
          by: opts.as ?? defaultIdentity(),
          reason: opts.reason,
          audit: ctx.audit,
        });
        print(`break-glass ${g.id} revoked by ${g.revokedBy}`);
      }),
    );
  access
    .command('reason-codes')
    .description('the reason codes break-glass accepts')
    .action(() => {
      for (const [code, meaning] of Object.entries(BREAK_GLASS_REASON_CODES)) print(`${code.padEnd(18)} ${meaning}`);
    });
}
