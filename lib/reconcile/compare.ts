/**
 * One batch of reconciliation: the vendor's copies (a search page, or what reads by id found) against the stored
 * records of the same ids, looked up in one query. Both sides are the minimised form (the vendor's is minimised
 * for the integration's purpose here, as sync would store it), compared as RFC 8785 text and, where they differ,
 * per element group by keyed digest. The decisions (lib/reconcile/decide.ts) are applied in one transaction with
 * their audit events: local copies updated or tombstoned, write-backs queued, conflicts opened, baselines kept.
 * After commit the write-back and conflict workflows are woken. Only counts leave.
 */
import type { AuditContext } from '../audit/chain.js';
import { decryptRecord } from '../crypto/envelope.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose } from '../fhir/minimise.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { TypeWritePolicy } from '../writeback/authority.js';
import type { ConflictNotifier, OutboxNotifier } from '../writeback/notifier.js';
import { applyDecisions } from './apply.js';
import type { Decision, Pending, RecordFacts, Side } from './decide.js';
import { decideRecord, NO_PENDING } from './decide.js';
import type { DigestKey } from './digest.js';
import { canonicalContent, digestKeyFor, groupDigests, keyedDigest, policyGroups } from './digest.js';
import type { Baseline, LocalRow, RecordScope } from './repository.js';
import { baselines, committedBatch, localRecords, pendingOfRecords, recordBatch } from './repository.js';
import type { BatchTally } from './tally.js';
import { emptyTally, tallyDecision } from './tally.js';

export interface ReconcileDeps {
  pool: Pool;
  keyring: TenantKeyring;
  outbox: OutboxNotifier;
  conflicts: ConflictNotifier;
}

export interface RemoteCopy {
  id: string;
  versionId: string;
  lastUpdated: string;
  resource: Record<string, unknown>;
}

export interface BatchInput {
  scope: RecordScope & { resourceType: ResourceType; purpose: Purpose };
  runId: string;
  policy: TypeWritePolicy;
  /** The vendor's copies. */
  remote: readonly RemoteCopy[];
  /** Stored ids the vendor said are gone (404/410 on a read by id). */
  gone?: readonly string[];
  /**
   * Names the batch within its run (type and cursor, or file and first line): a batch that committed is not
   * decided again, its recorded counts are returned.
   */
  batchKey: string;
  /** The vendor's copies were read by id (not listed): counted as `unlistedFound`. */
  unlisted?: boolean;
  /** Where the run goes on after this batch, recorded with it (a repeated batch goes on from the same place). */
  next?: string | null;
}

export interface Sides {
  side: Side;
  resource: Record<string, unknown>;
}

function sideOf(key: DigestKey, groups: readonly string[], resource: Record<string, unknown>): Sides {
  let digests: ReturnType<typeof groupDigests> | undefined;
  return {
    resource,
    side: { canonical: canonicalContent(resource), digests: () => (digests ??= groupDigests(key, resource, groups)) },
  };
}

/** What the batch compared: each record's decision, with the parsed sides the decisions are applied from. */
export interface Compared {
  decided: Decided[];
  locals: Map<string, LocalSide>;
  groups: string[];
}

export interface Decided {
  id: string;
  decision: Decision;
  remote?: RemoteSide;
  /** The agreed state to store for the record (absent: leave it). */
  baseline?: Baseline;
}

export type LocalSide = Sides & { versionId: string };
export type RemoteSide = RemoteCopy & Sides;

/** Something waits on the record: a queued change or create, or an open conflict. */
function waiting(p: Pending | undefined): boolean {
  return p !== undefined && (p.create || p.conflictOpen || p.elements.size > 0);
}

/** A vendor copy that matches the agreed state of an unchanged stored version: in sync, nothing to write. */
const SETTLED: Decision = decideRecord(
  { local: null, remote: null, baseline: null, pending: NO_PENDING },
  { create: false, update: false, elements: {} },
);

/**
 * The compare step: the vendor's copies minimised and canonicalised (RFC 8785), each compared first with its
 * record's agreed state (keyed whole digest, while the stored record is still the version it was agreed at: no
 * decryption); the rest against the stored record decrypted (canonical text, then keyed group digests where they
 * differ), and decided. No database access: the caller looked the local side up.
 */
export async function compareBatch(
  keyring: Pick<TenantKeyring, 'lookup'>,
  key: DigestKey,
  input: BatchInput,
  stored: { rows: readonly LocalRow[]; base: Map<string, Baseline>; pending: Map<string, Pending> },
): Promise<Compared> {
  const { scope, policy } = input;
  const groups = policyGroups(policy);
  const rows = new Map(stored.rows.map((r) => [r.resourceId, r]));
  const decided: Decided[] = [];
  const unsettled: RemoteSide[] = [];
  for (const copy of input.remote) {
    const minimised = minimiseForPurpose(scope.resourceType, copy.resource, scope.purpose).resource;
    const remote = { ...copy, ...sideOf(key, groups, minimised) };
    const row = rows.get(copy.id);
    const base = stored.base.get(copy.id);
    if (
      row &&
      base?.whole &&
      base.localVersion === row.versionId &&
      !waiting(stored.pending.get(copy.id)) &&
      keyedDigest(key, remote.side.canonical) === base.whole
    ) {
      decided.push({ id: copy.id, decision: SETTLED, remote });
      continue;
    }
    unsettled.push(remote);
  }
  const needed = new Set([...unsettled.map((r) => r.id), ...(input.gone ?? [])]);
  const locals = new Map<string, LocalSide>();
  for (const row of stored.rows) {
    if (!needed.has(row.resourceId)) continue;
    const plain = await decryptRecord(row.ciphertext, { ...scope, resourceId: row.resourceId }, keyring.lookup);
    const resource = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    plain.fill(0);
    locals.set(row.resourceId, { ...sideOf(key, groups, resource), versionId: row.versionId });
  }
  for (const remote of unsettled) {
    const local = locals.get(remote.id);
    const base = stored.base.get(remote.id);
    const pending = stored.pending.get(remote.id);
    const facts: RecordFacts = {
      local: local?.side ?? null,
      remote: remote.side,
      baseline: base?.digests ?? null,
      pending: pending ?? NO_PENDING,
    };
    const decision = decideRecord(facts, policy);
    decided.push({ id: remote.id, decision, remote, ...agreedState(key, decision, remote, local, base, pending) });
  }
  for (const id of input.gone ?? []) {
    const local = locals.get(id);
    if (!local) continue;
    const facts: RecordFacts = {
      local: local.side,
      remote: 'gone',
      baseline: null,
      pending: stored.pending.get(id) ?? NO_PENDING,
    };
    decided.push({ id, decision: decideRecord(facts, policy) });
  }
  return { decided, locals, groups };
}

/**
 * The baseline to store after a decision: the whole record agreed (in sync, or the vendor's copy stored) keeps its
 * whole digest and the stored version it holds; otherwise the agreed groups only. Undefined: nothing changed.
 */
function agreedState(
  key: DigestKey,
  decision: Decision,
  remote: RemoteSide,
  local: LocalSide | undefined,
  base: Baseline | undefined,
  pending: Pending | undefined,
): { baseline?: Baseline } {
  const whole = (localVersion: string): Baseline => ({
    digests: decision.baseline ?? base?.digests ?? remote.side.digests(),
    whole: keyedDigest(key, remote.side.canonical),
    localVersion,
  });
  if (decision.class === 'missing-local') return { baseline: whole(remote.versionId) };
  if (decision.class === 'in-sync' && local && !waiting(pending)) {
    const next = whole(local.versionId);
    const same =
      base && base.whole === next.whole && base.localVersion === next.localVersion && decision.baseline === null;
    return same ? {} : { baseline: next };
  }
  return decision.baseline ? { baseline: { digests: decision.baseline, whole: null, localVersion: null } } : {};
}

export async function reconcileBatch(deps: ReconcileDeps, ctx: AuditContext, input: BatchInput): Promise<BatchTally> {
  const { scope } = input;
  const committed = await committedBatch(deps.pool, input.runId, input.batchKey);
  if (committed) return committed.tally;
  const ids = [...new Set([...input.remote.map((r) => r.id), ...(input.gone ?? [])])];
  const [rows, base, pending] = await Promise.all([
    localRecords(deps.pool, scope, ids),
    baselines(deps.pool, scope, ids),
    pendingOfRecords(deps.pool, scope, ids),
  ]);
  const key = await digestKeyFor(deps.keyring, scope.tenantId);
  const compared = await compareBatch(deps.keyring, key, input, { rows, base, pending });
  const tally = emptyTally();
  for (const d of compared.decided) tallyDecision(tally, d.decision);
  if (input.unlisted) tally.decisions.unlistedFound += input.remote.length;
  const opened = await withTransaction(deps.pool, async (client) => {
    const applied = await applyDecisions(deps, ctx, client, input, compared);
    tally.decisions.writeBacksQueued = applied.writeBacks;
    tally.decisions.conflictsOpened = applied.conflictsOpened;
    await recordBatch(client, input.runId, input.batchKey, {
      tally,
      ...(input.next !== undefined ? { next: input.next } : {}),
    });
    return applied;
  });
  if (opened.writeBacks > 0) await deps.outbox.changesQueued(scope);
  for (const conflictId of opened.conflictIds) await deps.conflicts.conflictOpened({ ...scope, conflictId });
  return tally;
}
