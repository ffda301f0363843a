/**
 * When to write a checkpoint: every N events or T seconds (the policy), evaluated on an interval by
 * the worker that writes the anchor (EHR_AUDIT_CHECKPOINT_WRITER=on), and once more on a clean stop.
 */
import type { AuditSigningKeySource } from '../keys/purpose-keys.js';
import type { Pool, Queryable } from '../store/pool.js';
import type { AuditAnchor } from './anchor.js';
import { writeCheckpoint } from './checkpoint.js';
import type { StoredCheckpoint } from './checkpoint-jws.js';

export interface CheckpointPolicy {
  /** Checkpoint once this many events were added since the last checkpoint. */
  everyEvents: number;
  /** ...or once the last checkpoint is this old and there is anything new. */
  everySeconds: number;
  now?: () => Date;
}

/** What the policy says now, without writing. */
export async function checkpointDue(db: Queryable, policy: CheckpointPolicy): Promise<boolean> {
  const now = (policy.now?.() ?? new Date()).getTime();
  const { rows } = await db.query<{
    head_seq: string;
    cp_seq: string | null;
    cp_at: Date | null;
    first_at: Date | null;
  }>(
    `SELECT (SELECT seq::text FROM audit_head) AS head_seq,
            (SELECT event_seq::text FROM audit_checkpoints ORDER BY audit_checkpoints.checkpoint_seq DESC
              LIMIT 1) AS cp_seq,
            (SELECT created_at FROM audit_checkpoints ORDER BY audit_checkpoints.checkpoint_seq DESC LIMIT 1) AS cp_at,
            (SELECT occurred_at FROM audit_events WHERE seq = 1) AS first_at`,
  );
  const r = rows[0];
  if (!r) return false;
  const headSeq = Number(r.head_seq);
  const cpSeq = Number(r.cp_seq ?? 0);
  if (headSeq <= cpSeq) return false;
  if (headSeq - cpSeq >= policy.everyEvents) return true;
  const since = (r.cp_at ?? r.first_at)?.getTime() ?? now;
  return now - since >= policy.everySeconds * 1000;
}

/** Writes a checkpoint when the policy says one is due (every N events or T seconds). */
export async function maybeCheckpoint(
  pool: Pool,
  signer: AuditSigningKeySource,
  anchor: AuditAnchor,
  policy: CheckpointPolicy,
): Promise<StoredCheckpoint | undefined> {
  if (!(await checkpointDue(pool, policy))) return undefined;
  return writeCheckpoint(pool, signer, anchor, { now: policy.now });
}

export interface CheckpointSchedulerOptions extends CheckpointPolicy {
  pool: Pool;
  signer: AuditSigningKeySource;
  anchor: AuditAnchor;
  /** How often the policy is evaluated; default min(5 s, everySeconds). */
  pollMs?: number;
  onCheckpoint?: (cp: StoredCheckpoint) => void;
  /** Failures never stop the scheduler; they are reported here (log them: AuditIntegrityError means tampering). */
  onError?: (err: unknown) => void;
}

/** Runs `maybeCheckpoint` on an interval in the worker; `stop()` waits for a tick in progress. */
export class CheckpointScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: CheckpointSchedulerOptions) {}

  start(): void {
    if (this.timer) return;
    const pollMs = this.opts.pollMs ?? Math.min(5_000, this.opts.everySeconds * 1000);
    this.timer = setInterval(() => void this.tick(), pollMs);
    this.timer.unref();
  }

  /** One evaluation now (also used by tests); overlapping ticks are skipped. */
  async tick(): Promise<StoredCheckpoint | undefined> {
    if (this.running) return undefined;
    let result: StoredCheckpoint | undefined;
    this.running = (async () => {
      try {
        result = await maybeCheckpoint(this.opts.pool, this.opts.signer, this.opts.anchor, this.opts);
        if (result) this.opts.onCheckpoint?.(result);
      } catch (err) {
        this.opts.onError?.(err);
      }
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
    return result;
  }

  /** Stops the interval; with `final`, writes a last checkpoint if anything is new (clean shutdown). */
  async stop(opts: { final?: boolean } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    if (opts.final) {
      try {
        const cp = await writeCheckpoint(this.opts.pool, this.opts.signer, this.opts.anchor, { now: this.opts.now });
        if (cp) this.opts.onCheckpoint?.(cp);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
  }
}
