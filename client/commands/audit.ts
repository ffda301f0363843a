import type { Command } from 'commander';
import { verifyAuditChain } from '../../lib/audit/verify.js';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';


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
        if (!result.ok) process.exitCode = EXIT.auditBroken;
      }),
    );
}
