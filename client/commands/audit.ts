import type { Command } from 'commander';
import { verifyAuditChain } from '../../lib/audit/verify.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';

/** Exit code when the audit trail is broken: distinct from operational failures (1). */
export const AUDIT_BROKEN_EXIT_CODE = 4;

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description('recompute the hash chain; print the first broken sequence number')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const result = await verifyAuditChain(await ctx.db());
        if (opts.json) printJson(result);
        else if (result.ok) print(`audit chain intact: ${result.eventsChecked} events verified, head at seq ${result.headSeq}`);
        else print(`audit chain BROKEN at seq ${result.firstBrokenSeq}: ${result.reason} (${result.eventsChecked} events checked)`);
        if (!result.ok) process.exitCode = AUDIT_BROKEN_EXIT_CODE;
      }),
    );
}
