/**
 * A run's report: its counts per type and class (written when the run finishes), the drift rate, and what became
 * of its write-backs and conflicts so far (read live from the outbox and the conflicts). Counts and ids only.
 */
import { NotFoundError } from '../errors/index.js';
import type { Queryable } from '../store/pool.js';
import type { ReconcileRunRow } from './runs-repository.js';
import { getRun, runOutcomes } from './runs-repository.js';

export interface ReconcileRunReport extends ReconcileRunRow {
  /** Records compared (every class). */
  compared: number;
  /** Records in a class other than in-sync and pending, over those compared (0 when none were). */
  driftRate: number;
  /** Per class, summed over types. */
  totals: Record<string, number>;
  /** The run's write-backs by outbox status (pending, sent, refused, conflict, cancelled). */
  writeBacks: Record<string, number>;
  /** The run's conflicts by status (open, resolved, cancelled). */
  conflicts: Record<string, number>;
}

const NOT_DRIFT: ReadonlySet<string> = new Set(['in-sync', 'pending']);

export async function reconcileReport(db: Queryable, runId: string): Promise<ReconcileRunReport> {
  const run = await getRun(db, runId);
  if (!run) throw new NotFoundError('reconcile run', runId);
  const totals: Record<string, number> = {};
  for (const byClass of Object.values(run.counts))
    for (const [cls, n] of Object.entries(byClass)) totals[cls] = (totals[cls] ?? 0) + n;
  const compared = Object.values(totals).reduce((a, b) => a + b, 0);
  const drifted = Object.entries(totals)
    .filter(([cls]) => !NOT_DRIFT.has(cls))
    .reduce((a, [, n]) => a + n, 0);
  const outcomes = await runOutcomes(db, run);
  return { ...run, compared, driftRate: compared === 0 ? 0 : drifted / compared, totals, ...outcomes };
}
