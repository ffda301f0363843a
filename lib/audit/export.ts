/**
 * Compliance export of audit events: streamed in seq order (keyset batches, one REPEATABLE READ
 * snapshot), as JSON lines or RFC 4180 CSV. Audit rows hold no PHI by construction (identifiers,
 * counts, codes and pseudonyms only), so the export holds none either.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Pool } from '../store/pool.js';

export type AuditExportFormat = 'jsonl' | 'csv';

export interface AuditExportFilter {
  /** occurred_at >= since */
  since: Date;
  /** occurred_at < until */
  until?: Date;
  tenantId?: string;
}

export const AUDIT_EXPORT_COLUMNS = [
  'seq',
  'occurredAt',
  'actor',
  'action',
  'outcome',
  'tenantId',
  'integrationId',
  'correlationId',
  'details',
  'hash',
] as const;

interface ExportRow {
  seq: string;
  occurred_at: string;
  actor: string;
  action: string;
  outcome: string;
  tenant_id: string | null;
  integration_id: string | null;
  correlation_id: string;
  details: string;
  hash: string;
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, with quotes doubled; null
 * is an empty field. A text value that a spreadsheet would run as a formula (leading = + - @, tab or
 * CR) gets a leading apostrophe (OWASP CSV injection guidance); the JSON lines export is verbatim.
 */
export function csvField(value: string | null, opts: { text?: boolean } = {}): string {
  if (value === null) return '';
  let v = value;
  if (opts.text && /^[=+\-@\t\r]/.test(v)) v = `'${v}`;
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function csvLine(r: ExportRow): string {
  const t = { text: true };
  return `${[
    csvField(r.seq),
    csvField(r.occurred_at),
    csvField(r.actor, t),
    csvField(r.action, t),
    csvField(r.outcome, t),
    csvField(r.tenant_id, t),
    csvField(r.integration_id, t),
    csvField(r.correlation_id, t),
    csvField(r.details),
    csvField(r.hash),
  ].join(',')}\r\n`;
}

function jsonLine(r: ExportRow): string {
  return `${JSON.stringify({
    seq: Number(r.seq),
    occurredAt: r.occurred_at,
    actor: r.actor,
    action: r.action,
    outcome: r.outcome,
    tenantId: r.tenant_id,
    integrationId: r.integration_id,
    correlationId: r.correlation_id,
    details: JSON.parse(r.details) as unknown,
    hash: r.hash,
  })}\n`;
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

export async function exportAuditEvents(
  pool: Pool,
  filter: AuditExportFilter,
  format: AuditExportFormat,
  out: Writable,
  opts: { batchSize?: number } = {},
): Promise<{ rows: number }> {
  const batchSize = opts.batchSize ?? 5000;
  const client = await pool.connect();
  let rows = 0;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (format === 'csv') await write(out, `${AUDIT_EXPORT_COLUMNS.join(',')}\r\n`);
    let after = '0';
    for (;;) {
      const batch = await client.query<ExportRow>(
        `SELECT seq::text AS seq,
                to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at,
                actor, action, outcome, tenant_id, integration_id, correlation_id,
                details::text AS details, encode(hash, 'hex') AS hash
           FROM audit_events
          WHERE audit_events.seq > $1 AND occurred_at >= $2 AND ($3::timestamptz IS NULL OR occurred_at < $3)
            AND ($4::text IS NULL OR tenant_id = $4)
          ORDER BY audit_events.seq -- not the text alias
          LIMIT $5`,
        [after, filter.since.toISOString(), filter.until?.toISOString() ?? null, filter.tenantId ?? null, batchSize],
      );
      if (batch.rows.length > 0) {
        await write(out, batch.rows.map(format === 'csv' ? csvLine : jsonLine).join(''));
        rows += batch.rows.length;
        after = batch.rows[batch.rows.length - 1]!.seq;
      }
      if (batch.rows.length < batchSize) break;
    }
    return { rows };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
