/**
 * The patient strategy's listing claims (lib/reconcile/repository.ts claimSeen, against the real database as the
 * application role): a record listed under two rostered patients is compared under the first listing only; the
 * same listing retried holds the same records again; every claimed id is staged as listed, once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { claimSeen, clearSeen } from '../../lib/reconcile/repository.js';
import { uniqueId } from '../harness.js';
import { testPool } from './support.js';

const pool = testPool();
afterAll(async () => {
  await pool.end();
});

describe('reconcile listing claims', () => {
  it('gives a record to the first patient listing it, again to that listing on a retry, and never to another', async () => {
    const runId = uniqueId('run');
    const first = await claimSeen(pool, runId, 'Appointment', ['a1', 'a2', 'shared'], 'Appointment:patient:0');
    expect([...first].sort()).toEqual(['a1', 'a2', 'shared']);
    const second = await claimSeen(pool, runId, 'Appointment', ['shared', 'b1'], 'Appointment:patient:1');
    expect([...second]).toEqual(['b1']);
    // The first listing retried (its reply lost before it committed): it holds the same records.
    const retried = await claimSeen(pool, runId, 'Appointment', ['a1', 'a2', 'shared'], 'Appointment:patient:0');
    expect([...retried].sort()).toEqual(['a1', 'a2', 'shared']);
    // Another type's ids are claimed apart.
    expect([...(await claimSeen(pool, runId, 'Observation', ['shared'], 'Observation:patient:1'))]).toEqual(['shared']);
    // Every claimed id counts as listed once (the unlisted phase reads reconcile_seen).
    const seen = await pool.query<{ resource_type: string; resource_id: string; claimed_by: string }>(
      'SELECT resource_type, resource_id, claimed_by FROM reconcile_seen WHERE run_id = $1 ORDER BY 1, 2',
      [runId],
    );
    expect(seen.rows.map((r) => [r.resource_type, r.resource_id, r.claimed_by])).toEqual([
      ['Appointment', 'a1', 'Appointment:patient:0'],
      ['Appointment', 'a2', 'Appointment:patient:0'],
      ['Appointment', 'b1', 'Appointment:patient:1'],
      ['Appointment', 'shared', 'Appointment:patient:0'],
      ['Observation', 'shared', 'Observation:patient:1'],
    ]);
    await clearSeen(pool, runId);
    const left = await pool.query('SELECT 1 FROM reconcile_seen WHERE run_id = $1', [runId]);
    expect(left.rowCount).toBe(0);
  });
});
