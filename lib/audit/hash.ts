/**
 * The audit chain's hash: SHA-256(prev_hash || RFC 8785 canonical JSON of the event's covered fields).
 * Apart from chain.ts (which appends under the head's lock) because writing and verifying both need it,
 * and its byte layout is the one part that must never change: every stored hash depends on it.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { InvalidArgumentError } from '../errors/index.js';
import type { AuditOutcome } from './chain.js';

/** The exact fields the hash covers, in the form they are canonicalised. */
export interface CanonicalAuditRecord {
  seq: number;
  occurredAt: string;
  actor: string;
  action: string;
  outcome: AuditOutcome;
  tenantId: string | null;
  integrationId: string | null;
  correlationId: string;
  details: Record<string, unknown>;
}

/** The previous hash of the first event. */
export const AUDIT_GENESIS_HASH: Buffer = Buffer.alloc(32);

export function computeAuditHash(prevHash: Buffer, record: CanonicalAuditRecord): Buffer {
  const details = canonicalize(record.details);
  if (details === undefined) throw new InvalidArgumentError('audit event', 'cannot be canonicalised');
  return auditHashWithDetails(prevHash, record, details);
}

const jsonText = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

/**
 * The hash, given the RFC 8785 form of `details` already computed. The outer object is written out
 * with its keys in RFC 8785 order (UTF-16 code units), byte-identical to canonicalize(record) — a
 * unit test holds the two equal — and several times faster, which is what verification needs.
 */
export function auditHashWithDetails(prevHash: Buffer, record: CanonicalAuditRecord, detailsCanonical: string): Buffer {
  if (!Number.isSafeInteger(record.seq)) throw new InvalidArgumentError('audit event seq', 'must be a safe integer');
  const canonical =
    `{"action":${jsonText(record.action)},"actor":${jsonText(record.actor)},"correlationId":${jsonText(record.correlationId)},` +
    `"details":${detailsCanonical},"integrationId":${jsonText(record.integrationId)},"occurredAt":${jsonText(record.occurredAt)},` +
    `"outcome":${jsonText(record.outcome)},"seq":${String(record.seq)},"tenantId":${jsonText(record.tenantId)}}`;
  return createHash('sha256').update(prevHash).update(canonical, 'utf8').digest();
}

/**
 * RFC 8785 canonical JSON of a value that came from JSON.parse (no toJSON, undefined or symbols): the
 * same output as `canonicalize` for such values (a property test holds them equal), faster.
 */
export function canonicalJsonValue(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new InvalidArgumentError('audit event', 'cannot be canonicalised');
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + canonicalJsonValue(v[i]);
        return `${out}]`;
      }
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length > 1) keys.sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        out += `${i === 0 ? '' : ','}${JSON.stringify(k)}:${canonicalJsonValue(o[k])}`;
      }
      return `${out}}`;
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      break;
  }
  throw new InvalidArgumentError('audit event', 'cannot be canonicalised');
}
