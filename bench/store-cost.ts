/**
 * What PostgreSQL alone must spend to hold a bulk run's records, measured on the very rows the product stored:
 * the run's sealed records, inserted again with one `INSERT … SELECT` (no client, no protocol, no parsing — less
 * than any way of sending them can cost) into `records` itself (its primary key, its indexes for key rotation,
 * the gateway and retention, the CHECK that key_version is the ciphertext's header, the foreign key), and into a
 * bare table of the same columns. The first is a lower bound of the store's share of a sync's CPU; set against the
 * CPU budget at the ≤ 1.3 x aim it shows whether that aim can be met with these guarantees on this machine.
 */
import type { Pool } from '../lib/store/pool.js';
import { cpuSecondsByCommand } from './bench-worker.js';

export interface StoreCost {
  rows: number;
  /** PostgreSQL CPU-s for the rows into `records` (every guarantee), and into a bare table. */
  intoRecords: number;
  intoBare: number;
}

const postgresCpu = (workerPid: number): number => cpuSecondsByCommand(workerPid).get('postgres') ?? 0;

/** Keeps a copy of an integration's stored records (call before the run's records are deleted). */
export async function keepSealedRecords(pool: Pool, tenantId: string, integrationId: string): Promise<void> {
  await pool.query('DROP TABLE IF EXISTS bench_sealed');
  await pool.query('CREATE TABLE bench_sealed AS SELECT * FROM records WHERE tenant_id = $1 AND integration_id = $2', [
    tenantId,
    integrationId,
  ]);
}

/**
 * Inserts the kept rows into `records` (then deletes them and vacuums, as each run's end does) and into a bare
 * table, measuring PostgreSQL's CPU for each insert. `records` must not hold these rows when called.
 */
export async function measureStoreCost(pool: Pool, workerPid: number): Promise<StoreCost> {
  const rows = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM bench_sealed')).rows[0]!.n);
  await pool.query('VACUUM (ANALYZE) bench_sealed');
  let before = postgresCpu(workerPid);
  await pool.query('INSERT INTO records SELECT * FROM bench_sealed');
  const intoRecords = postgresCpu(workerPid) - before;
  await pool.query(
    'DELETE FROM records r USING bench_sealed s WHERE r.tenant_id = s.tenant_id ' +
      'AND r.integration_id = s.integration_id AND r.resource_type = s.resource_type AND r.resource_id = s.resource_id',
  );
  await pool.query('VACUUM (ANALYZE) records');
  // LIKE without INCLUDING: the columns and their NOT NULLs, no key, index, CHECK or foreign key.
  await pool.query('DROP TABLE IF EXISTS bench_bare; CREATE TABLE bench_bare (LIKE records)');
  before = postgresCpu(workerPid);
  await pool.query('INSERT INTO bench_bare SELECT * FROM bench_sealed');
  const intoBare = postgresCpu(workerPid) - before;
  await pool.query('DROP TABLE bench_bare; DROP TABLE bench_sealed');
  return { rows, intoRecords, intoBare };
}
