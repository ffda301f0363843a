/**
 * What reconciliation concludes about one record: its class, and per differing element group what the authority
 * policy decides. Pure: the caller fetched both sides, minimised and digested them; the outcome names classes,
 * element names and decisions only (the values stay with the caller).
 *
 * Classes: in-sync, missing-local (the vendor has it, we do not), missing-remote (we have it, the vendor neither
 * lists it nor says it is gone), diverged, deleted-remote (the vendor says it is gone: 404/410 on a read by id, a
 * tombstone), and pending (skipped: a local create not yet sent). Elements a pending outbox change carries are not
 * differences (write-back is on its way), nor are `local-only` elements (kept here on purpose).
 */
import type { Authority, TypeWritePolicy } from '../writeback/authority.js';
import { elementAuthority } from '../writeback/authority.js';
import type { GroupDigests } from './digest.js';
import { REST_GROUP } from './digest.js';

export const RECORD_CLASSES = [
  'in-sync',
  'missing-local',
  'missing-remote',
  'diverged',
  'deleted-remote',
  'pending',
] as const;
export type RecordClass = (typeof RECORD_CLASSES)[number];

export interface Side {
  /** RFC 8785 text of the content (no id/meta/text): equal texts, equal records. */
  canonical: string;
  /** Group digests; computed only when the canonical texts differ or a baseline is due. */
  digests: () => GroupDigests;
}

export interface Pending {
  /** A create of this record waits in the outbox. */
  create: boolean;
  /** The record was created here (a create of it is in the outbox, sent or not): the vendor may never have had it. */
  createdLocally: boolean;
  /** An open conflict of this record waits for a person. */
  conflictOpen: boolean;
  /** Elements pending updates and the open conflict carry. */
  elements: ReadonlySet<string>;
}

export const NO_PENDING: Pending = { create: false, createdLocally: false, conflictOpen: false, elements: new Set() };

export interface RecordFacts {
  local: Side | null;
  /** 'gone': not listed, and a read by id answered 404/410; null: not asked (the vendor's side is unknown). */
  remote: Side | 'gone' | null;
  baseline: GroupDigests | null;
  pending: Pending;
}

export interface Decision {
  class: RecordClass;
  /** Element groups that differ (policy elements and `_rest`), after pending and local-only ones are removed. */
  diverged: string[];
  /** Groups whose vendor value replaces the local one. */
  takeRemote: string[];
  /** Elements whose local value is queued to be written back. */
  writeBack: string[];
  /** Elements that wait for a person, and why. */
  conflict: { reason: 'both-changed' | 'deleted-remote'; elements: string[] } | null;
  /** store the vendor's copy as it is (missing-local) */
  storeRemote: boolean;
  /** tombstone the local copy (deleted-remote without pending changes) */
  tombstone: boolean;
  /** Local-only elements that differ: kept, never sent. */
  ignored: string[];
  /** The agreed group digests after the decision (null: leave the baseline as it is). */
  baseline: Record<string, string> | null;
}

function outcome(cls: RecordClass, extra: Partial<Decision> = {}): Decision {
  return {
    class: cls,
    diverged: [],
    takeRemote: [],
    writeBack: [],
    conflict: null,
    storeRemote: false,
    tombstone: false,
    ignored: [],
    baseline: null,
    ...extra,
  };
}

function authorityOf(policy: TypeWritePolicy, group: string): Authority {
  return group === REST_GROUP ? 'remote' : elementAuthority(policy, group);
}

export function decideRecord(facts: RecordFacts, policy: TypeWritePolicy): Decision {
  const { local, remote, pending } = facts;
  if (local === null) {
    if (remote === null || remote === 'gone') return outcome('in-sync');
    return outcome('missing-local', { storeRemote: true, baseline: remote.digests() });
  }
  if (remote === 'gone') {
    if (pending.create || pending.conflictOpen) return outcome('pending');
    if (pending.createdLocally) return outcome('missing-remote');
    if (pending.elements.size > 0)
      return outcome('deleted-remote', {
        conflict: { reason: 'deleted-remote', elements: [...pending.elements].sort() },
      });
    return outcome('deleted-remote', { tombstone: true });
  }
  if (remote === null) return pending.create ? outcome('pending') : outcome('missing-remote');
  if (local.canonical === remote.canonical) {
    const digests = remote.digests();
    return outcome('in-sync', { baseline: facts.baseline && sameGroups(facts.baseline, digests) ? null : digests });
  }
  const l = local.digests();
  const r = remote.digests();
  const baseline = facts.baseline ?? {};
  const agreed: Record<string, string> = { ...baseline };
  const d = outcome('diverged');
  let pendingSkipped = false;
  const conflicting: string[] = [];
  for (const group of Object.keys(r).sort()) {
    if (l[group] === r[group]) {
      agreed[group] = r[group]!;
      continue;
    }
    if (pending.elements.has(group)) {
      pendingSkipped = true;
      continue;
    }
    const authority = authorityOf(policy, group);
    if (authority === 'local-only') {
      d.ignored.push(group);
      continue;
    }
    d.diverged.push(group);
    switch (authority) {
      case 'remote':
        d.takeRemote.push(group);
        agreed[group] = r[group]!;
        break;
      case 'local':
        d.writeBack.push(group);
        break;
      case 'shared': {
        const base = baseline[group];
        const localChanged = base === undefined || l[group] !== base;
        const remoteChanged = base === undefined || r[group] !== base;
        if (localChanged && remoteChanged) conflicting.push(group);
        else if (remoteChanged) {
          d.takeRemote.push(group);
          agreed[group] = r[group]!;
        } else d.writeBack.push(group);
        break;
      }
    }
  }
  if (conflicting.length > 0) d.conflict = { reason: 'both-changed', elements: conflicting };
  d.baseline = sameGroups(baseline, agreed) ? null : agreed;
  if (d.diverged.length === 0) {
    d.class = pendingSkipped ? 'pending' : 'in-sync';
  }
  return d;
}

function sameGroups(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
