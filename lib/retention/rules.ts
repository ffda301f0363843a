/**
 * Retention rules (issue 12 item 6): per tenant, how many days each kind of stored data is kept.
 *
 * Kinds:
 *  - `records:<class>` — stored records of one data class (lib/fhir/data-classes.ts). A record's class for
 *    retention is its resource type's dominant class: the type's default class in the classification rules
 *    (TYPE_RULES[type].default — Patient: demographics, Observation: labs-vitals, Encounter and Appointment:
 *    scheduling, Coverage: billing, …), whatever the purpose that stored it. Its clock runs from `stored_at`,
 *    when the version we hold was stored (a newer version from the vendor starts it again).
 *  - `webhook-deliveries` — delivery rows (dedupe records, no content), from `received_at`.
 *  - `evidence` — incident evidence (read by the evidence purge; see the README for its state).
 *  - `exports` — batch exports; the export's own timer reads `retentionDaysFor(db, tenant, 'exports')`.
 *  - `audit` — audit rows. The chain is one for every tenant, so its retention is global: the longest of
 *    every audit rule, every other rule of every tenant and every default ("at least as long as the longest
 *    rule"). A lower `audit` rule is stored but does not shorten it.
 *
 * Defaults (DEFAULT_RETENTION_DAYS) apply where a tenant set no rule.
 */
import type { ResourceType } from '../domain.js';
import { RESOURCE_TYPES } from '../domain.js';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { TYPE_RULES } from '../fhir/classification-rules.js';
import type { DataClass } from '../fhir/data-classes.js';
import { DATA_CLASSES } from '../fhir/data-classes.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';

export const OTHER_RETENTION_KINDS = ['webhook-deliveries', 'evidence', 'exports', 'audit'] as const;
export type RecordsKind = `records:${DataClass}`;
export type RetentionKind = RecordsKind | (typeof OTHER_RETENTION_KINDS)[number];
export const RETENTION_KINDS: readonly RetentionKind[] = [
  ...DATA_CLASSES.map((c): RecordsKind => `records:${c}`),
  ...OTHER_RETENTION_KINDS,
];

/** Seven years for the clinical and billing record (a common state and payer minimum); less for the rest. */
const RECORD_DEFAULT_DAYS: Readonly<Record<DataClass, number>> = {
  administrative: 2555,
  identifiers: 2555,
  demographics: 2555,
  'clinical-notes': 2555,
  diagnoses: 2555,
  procedures: 2555,
  medications: 2555,
  'labs-vitals': 2555,
  'care-plans': 2555,
  scheduling: 730,
  billing: 2555,
};

export const DEFAULT_RETENTION_DAYS: Readonly<Record<RetentionKind, number>> = {
  ...(Object.fromEntries(DATA_CLASSES.map((c) => [`records:${c}`, RECORD_DEFAULT_DAYS[c]])) as Record<
    RecordsKind,
    number
  >),
  // Dedupe records of deliveries long handed on; senders retry for days, not months.
  'webhook-deliveries': 90,
  // Six years: HIPAA's documentation retention (45 CFR 164.316(b)(2)).
  evidence: 2190,
  exports: 30,
  audit: 2190,
};

export const MAX_RETENTION_DAYS = 36500;

export function isDataClass(value: string): value is DataClass {
  return (DATA_CLASSES as readonly string[]).includes(value);
}

export function isRetentionKind(value: string): value is RetentionKind {
  return (RETENTION_KINDS as readonly string[]).includes(value);
}

/** `--class C`: a data class (records of that class) or one of the other kinds. */
export function parseRetentionKind(value: string): RetentionKind {
  const kind = isDataClass(value) ? `records:${value}` : value;
  if (!isRetentionKind(kind))
    throw new InvalidArgumentError(
      '--class',
      `expected a data class (${DATA_CLASSES.join(', ')}) or ${OTHER_RETENTION_KINDS.join(', ')}`,
    );
  return kind;
}

export function parseRetentionDays(value: string): number {
  const days = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(days >= 1 && days <= MAX_RETENTION_DAYS))
    throw new InvalidArgumentError('--days', `expected a whole number of days from 1 to ${MAX_RETENTION_DAYS}`);
  return days;
}

/** The data class a stored record of this type is kept by: the type's dominant (default) class. */
export function retentionClassOf(type: ResourceType): DataClass {
  return TYPE_RULES[type].default;
}

/** The resource types whose records are kept by the class's rule. */
export function typesOfRetentionClass(dataClass: DataClass): ResourceType[] {
  return RESOURCE_TYPES.filter((t) => retentionClassOf(t) === dataClass);
}

async function tenantRules(db: Queryable, tenantId: string): Promise<Map<string, number>> {
  const res = await db.query<{ kind: string; days: number }>(
    'SELECT kind, days FROM retention_rules WHERE tenant_id = $1',
    [tenantId],
  );
  return new Map(res.rows.map((r) => [r.kind, r.days]));
}

/** The longest rule anywhere (every tenant's rules and the defaults): the audit trail's floor. */
async function longestRuleDays(db: Queryable): Promise<number> {
  const res = await db.query<{ max: number | null }>('SELECT max(days)::int AS max FROM retention_rules');
  return Math.max(res.rows[0]?.max ?? 0, ...Object.values(DEFAULT_RETENTION_DAYS));
}

/** Days kept for `kind` in the tenant: its rule, else the default. `audit` is global (see above). */
export async function retentionDaysFor(db: Queryable, tenantId: string, kind: RetentionKind): Promise<number> {
  if (kind === 'audit') return auditRetentionDays(db);
  return (await tenantRules(db, tenantId)).get(kind) ?? DEFAULT_RETENTION_DAYS[kind];
}

/** How long audit rows are kept: never less than the longest rule of any kind, of any tenant. */
export async function auditRetentionDays(db: Queryable): Promise<number> {
  return longestRuleDays(db);
}

export interface RetentionRuleView {
  kind: RetentionKind;
  days: number;
  source: 'tenant' | 'default';
  /** For records: the resource types the rule applies to. */
  resourceTypes?: ResourceType[];
  /** For audit: the days actually kept (the longest rule), when it differs from `days`. */
  effectiveDays?: number;
}

export async function showRetentionRules(db: Queryable, tenantId: string): Promise<RetentionRuleView[]> {
  await assertTenant(db, tenantId);
  const rules = await tenantRules(db, tenantId);
  const audit = await auditRetentionDays(db);
  return RETENTION_KINDS.map((kind) => {
    const own = rules.get(kind);
    const view: RetentionRuleView = {
      kind,
      days: own ?? DEFAULT_RETENTION_DAYS[kind],
      source: own === undefined ? 'default' : 'tenant',
    };
    if (kind.startsWith('records:')) view.resourceTypes = typesOfRetentionClass(kind.slice(8) as DataClass);
    if (kind === 'audit' && audit !== view.days) view.effectiveDays = audit;
    return view;
  });
}

async function assertTenant(db: Queryable, tenantId: string): Promise<void> {
  const res = await db.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]);
  if (res.rowCount === 0) throw new NotFoundError('tenant', tenantId);
}

/** `ehrctl retention set`: stores the tenant's rule for a kind, audited in the same transaction. */
export async function setRetentionRule(
  pool: Pool,
  input: { tenantId: string; kind: RetentionKind; days: number },
  ctx: AuditContext,
): Promise<{ previousDays: number; days: number }> {
  if (!isRetentionKind(input.kind)) throw new InvalidArgumentError('--class', 'unknown retention kind');
  if (!Number.isInteger(input.days) || input.days < 1 || input.days > MAX_RETENTION_DAYS)
    throw new InvalidArgumentError('--days', `expected a whole number of days from 1 to ${MAX_RETENTION_DAYS}`);
  return withTransaction(pool, async (client) => {
    await assertTenant(client, input.tenantId);
    const previousDays = await retentionDaysFor(client, input.tenantId, input.kind);
    await client.query(
      `INSERT INTO retention_rules (tenant_id, kind, days, set_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, kind) DO UPDATE SET days = EXCLUDED.days, set_by = EXCLUDED.set_by, set_at = now()`,
      [input.tenantId, input.kind, input.days, ctx.actor],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'retention.rule_set',
        outcome: 'success',
        tenantId: input.tenantId,
        details: { kind: input.kind, days: input.days, previousDays },
      },
    ]);
    return { previousDays, days: input.days };
  });
}
