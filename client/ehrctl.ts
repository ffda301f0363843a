/**
 * ehrctl — the operator CLI. Exit codes: 0 ok; 1 failed; 2 bad usage or argument; 3 not found or
 * already exists; 4 audit chain broken; 69 a dependency (Temporal, PostgreSQL) unreachable;
 * 78 invalid configuration.
 */
import { Command, CommanderError } from 'commander';
import { EhrError } from '../lib/errors/index.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerDevCommands } from './commands/dev.js';
import { registerIntegrationCommands } from './commands/integrations.js';
import { registerRecordCommands } from './commands/records.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { registerSyncCommands } from './commands/sync.js';
import { registerTenantCommands } from './commands/tenants.js';

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
  return program;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof EhrError) {
    switch (err.code) {
      case 'CONFIG_INVALID':
        return 78;
      case 'INFRASTRUCTURE_UNAVAILABLE':
        return 69;
      case 'INVALID_ARGUMENT':
        return 2;
      case 'NOT_FOUND':
      case 'CONFLICT':
        return 3;
      default:
        return 1;
    }
  }
  return 1;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
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
