import path from 'node:path';
import { runner } from 'node-pg-migrate';

export const migrationsDir = path.resolve(__dirname, '../../migrations');

/** Applies pending migrations (node-pg-migrate: SQL files, advisory-locked, recorded in pgmigrations). */
export async function migrateUp(databaseUrl: string): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: migrationsDir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    log: () => undefined,
    verbose: false,
  });
  return applied.map((m) => m.name);
}
