import type { Command } from 'commander';
import { storedSecretPolicyFromConfig } from '../../lib/config/stored-secret-refs.js';
import { migrateUp } from '../../lib/store/migrate.js';
import { writeSecretRoots } from '../../lib/store/secret-roots.js';
import { withContext } from '../context.js';
import { print } from '../output.js';

/**
 * `ehrctl db migrate`: what the database owner runs before the application starts (the dev stack does
 * the same itself): the migrations, then the secret roots the definer functions check stored secret
 * references against (EHR_SECRETS_DIR and EHR_SECRET_ROOTS; excluded EHR_KEK_DIR and PGPASSFILE).
 */
export function registerDbCommands(program: Command): void {
  const db = program
    .command('db')
    .description('the database schema (run as the database owner, not the application role)');
  db.command('migrate')
    .description(
      'apply pending migrations, ' +
        'then record where stored secret references may point (EHR_SECRETS_DIR, EHR_SECRET_ROOTS)',
    )
    .action(async () =>
      withContext(async (ctx) => {
        const applied = await migrateUp(ctx.config.DATABASE_URL);
        const policy = storedSecretPolicyFromConfig(ctx.config);
        const { changed } = await writeSecretRoots(ctx.config.DATABASE_URL, policy, ctx.audit.actor);
        print(`migrations applied: ${applied.length}`);
        print(
          `secret roots ${changed ? 'recorded' : 'unchanged'}: ` +
            `${policy.roots.join(', ')} (excluded: ${policy.excluded.join(', ')})`,
        );
      }),
    );
}
