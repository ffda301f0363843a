/** ehrctl — the operator CLI. Exit codes: lib/errors/exit-codes.ts. */
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeForError } from '../lib/errors/exit-codes.js';
import { registerAccessCommands } from './commands/access.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerAuditHistoryCommand } from './commands/audit-history.js';
import { registerConsumerCommands } from './commands/consumers.js';
import { registerDbCommands } from './commands/db.js';
import { registerDevCommands } from './commands/dev.js';
import { registerExportCommands } from './commands/export.js';
import { registerIncidentCommands } from './commands/incident.js';
import { registerIntegrationCommands } from './commands/integrations.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerHoldCommands } from './commands/holds.js';
import { registerRecordCommands } from './commands/records.js';
import { registerReconcile } from './commands/reconcile.js';
import { registerReconcileConflictCommands } from './commands/reconcile-conflicts.js';
import { registerRetentionCommands } from './commands/retention.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { registerSyncCommands } from './commands/sync.js';
import { registerTenantCommands } from './commands/tenants.js';
import { registerVendorCommands } from './commands/vendors.js';
import { registerWebhookCommands } from './commands/webhooks.js';
import { registerWriteCommands } from './commands/writes.js';
import { registerWritePolicyCommands } from './commands/write-policy.js';
import { fromTemporalError } from './temporal-errors.js';

export function buildProgram(): Command {
  const program = new Command('ehrctl')
    .description('Secure EHR connectors on Temporal: tenants, integrations, syncs, schedules, audit')
    .showHelpAfterError()
    .exitOverride();
  registerDevCommands(program);
  registerTenantCommands(program);
  registerIntegrationCommands(program);
  registerSyncCommands(program);
  registerScheduleCommands(program);
  registerRecordCommands(program);
  registerAuditCommands(program);
  registerVendorCommands(program);
  registerKeyCommands(program);
  registerIncidentCommands(program);
  registerWebhookCommands(program);
  registerDbCommands(program);
  registerConsumerCommands(program);
  registerRetentionCommands(program);
  registerHoldCommands(program);
  registerAccessCommands(program);
  registerExportCommands(program);
  registerWriteCommands(program);
  registerReconcile(program);
  registerReconcileConflictCommands(program);
  registerAuditHistoryCommand(program.commands.find((c) => c.name() === 'audit')!);
  // `writes policy`: under the `writes` group when another command file made it, else in a group of its own.
  registerWritePolicyCommands(
    program.commands.find((c) => c.name() === 'writes') ??
      program.command('writes').description('local changes written back to the EHR'),
  );
  return program;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return exitCodeForError(fromTemporalError(err));
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (thrown) {
    const err = fromTemporalError(thrown);
    const code = exitCodeFor(err);
    if (!(err instanceof CommanderError)) {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`ehrctl: ${message}\n`);
    }
    process.exitCode = code;
  }
}

if (require.main === module) {
  void main(process.argv);
}
