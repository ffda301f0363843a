/**
 * The sandbox's memory of writes: the Idempotency-Key answers (a repeated key returns the first answer and
 * writes nothing), the identifiers of written resources (for `If-None-Exist` conditional creates), refusals
 * queued on request (409/422/400/403 with an OperationOutcome code, as a vendor's business rules answer), and the
 * write ledger: per request key, how many effects (versions written) it had — what tests count duplicates by.
 */
import type { ResourceType } from '../lib/domain.js';

export interface StoredAnswer {
  requestDigest: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface WriteStats {
  created: number;
  updated: number;
  /** Requests answered from the idempotency store (nothing written). */
  replayed: number;
  /** Same key, different request: refused. */
  keyConflicts: number;
  /** Conditional creates answered with the one existing match (nothing written). */
  conditionalMatches: number;
  /** Updates refused for a stale If-Match. */
  preconditionFailed: number;
  /** Writes refused on request (admin write faults). */
  refused: number;
}

export interface LedgerRow {
  /** The request's Idempotency-Key ('' when it had none). */
  key: string;
  method: 'POST' | 'PUT';
  resourceType: string;
  /** The written resource's id (once one was written or matched). */
  id?: string;
  /** Versions this key wrote: more than one is a duplicate write. */
  effects: number;
  /** Answers of this key without an effect (replays, matches, 412s, refusals). */
  noEffect: number;
  /** The If-Match / If-None-Exist of its last request, as sent (versions and our identifiers, no content). */
  ifMatch?: string;
  ifNoneExist?: string;
}

/** A slow answer on request: the write is carried out at once, its answer held back (a crash window). */
export interface SlowWrite {
  delayMs: number;
  resourceType?: ResourceType;
  remaining: number;
}

export interface WriteRefusal {
  status: 400 | 403 | 409 | 422 | 429 | 500 | 503;
  code: string;
  retryAfterSeconds?: number;
  resourceType?: ResourceType;
  remaining: number;
}

/** A record's content with some elements set (null removes one): a conflicting edit at the vendor. */
export function editedContent(
  resource: Record<string, unknown>,
  elements: Record<string, unknown>,
): Record<string, unknown> {
  const content: Record<string, unknown> = { ...resource };
  for (const [name, value] of Object.entries(elements)) {
    if (value === null) delete content[name];
    else content[name] = value;
  }
  return content;
}

export class WriteLedger {
  readonly answers = new Map<string, StoredAnswer>();
  readonly stats: WriteStats = {
    created: 0,
    updated: 0,
    replayed: 0,
    keyConflicts: 0,
    conditionalMatches: 0,
    preconditionFailed: 0,
    refused: 0,
  };
  private readonly rows = new Map<string, LedgerRow>();
  /** `type|system|value` → ids of written resources carrying that identifier. */
  private readonly identifiers = new Map<string, Set<string>>();
  private refusals: WriteRefusal[] = [];
  private slow: SlowWrite[] = [];
  /** Edits someone at the vendor makes the moment the next write of a record arrives (a guaranteed 412 race). */
  readonly editsOnNextWrite = new Map<string, Record<string, unknown>>();

  row(key: string, method: 'POST' | 'PUT', resourceType: string): LedgerRow {
    const name = `${method} ${resourceType} ${key}`;
    let row = this.rows.get(name);
    if (!row) this.rows.set(name, (row = { key, method, resourceType, effects: 0, noEffect: 0 }));
    return row;
  }

  ledger(): LedgerRow[] {
    return [...this.rows.values()];
  }

  /** Remembers the identifiers of a written resource (conditional creates search them). */
  index(type: string, id: string, resource: Record<string, unknown>): void {
    const identifiers = Array.isArray(resource.identifier) ? (resource.identifier as unknown[]) : [];
    for (const i of identifiers) {
      const { system, value } = (i ?? {}) as { system?: unknown; value?: unknown };
      if (typeof value !== 'string') continue;
      const name = `${type}|${typeof system === 'string' ? system : ''}|${value}`;
      let ids = this.identifiers.get(name);
      if (!ids) this.identifiers.set(name, (ids = new Set()));
      ids.add(id);
    }
  }

  /** Ids matching an `If-None-Exist: identifier=[system|]value` (undefined: a criterion we do not support). */
  matches(type: string, criterion: string): string[] | undefined {
    const params = new URLSearchParams(criterion);
    const keys = [...params.keys()];
    const token = params.get('identifier');
    if (keys.length !== 1 || token === null) return undefined;
    const bar = token.indexOf('|');
    if (bar >= 0) return [...(this.identifiers.get(`${type}|${token.slice(0, bar)}|${token.slice(bar + 1)}`) ?? [])];
    const ids = new Set<string>();
    for (const [name, found] of this.identifiers)
      if (name.startsWith(`${type}|`) && name.endsWith(`|${token}`)) for (const id of found) ids.add(id);
    return [...ids];
  }

  refuseNext(refusal: WriteRefusal): void {
    this.refusals.push(refusal);
  }

  slowNext(slow: SlowWrite): void {
    this.slow.push(slow);
  }

  /** The delay of the next slow answer for a write of the type, consumed (0: none). */
  takeSlow(type: ResourceType): number {
    const at = this.slow.findIndex((r) => r.resourceType === undefined || r.resourceType === type);
    if (at < 0) return 0;
    const slow = this.slow[at] as SlowWrite;
    slow.remaining -= 1;
    if (slow.remaining <= 0) this.slow.splice(at, 1);
    return slow.delayMs;
  }

  /** The next queued refusal for a write of the type, consumed. */
  takeRefusal(type: ResourceType): WriteRefusal | undefined {
    const at = this.refusals.findIndex((r) => r.resourceType === undefined || r.resourceType === type);
    if (at < 0) return undefined;
    const refusal = this.refusals[at] as WriteRefusal;
    refusal.remaining -= 1;
    if (refusal.remaining <= 0) this.refusals.splice(at, 1);
    this.stats.refused++;
    return refusal;
  }
}
