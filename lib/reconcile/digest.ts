/**
 * Per-record, per-element-group digests of a canonical minimised resource (RFC 8785, `canonicalize`). Groups are
 * the type's write-policy elements one by one, plus `_rest` for every remaining (EHR-owned) element; `id`, `meta`,
 * `text` and `resourceType` are ignored (the vendor assigns them). A primitive's extension (`_status`) belongs to
 * its element's group.
 *
 * Digests are keyed: HMAC-SHA256 under a per-tenant digest key, so a stored digest of a low-entropy element (a
 * status) cannot be reversed by hashing the few possible values. They are stored (the baseline) and compared,
 * never carried in a workflow history, a log or an audit event.
 */
import type { KeyObject } from 'node:crypto';
import { createHmac, createSecretKey, hkdfSync } from 'node:crypto';
import type { TenantKeyring } from '../keys/keyring.js';
import type { TypeWritePolicy } from '../writeback/authority.js';
import { VENDOR_ASSIGNED_ELEMENTS } from '../writeback/authority.js';

/** The group of every element the policy does not list. */
export const REST_GROUP = '_rest';
const IGNORED: ReadonlySet<string> = new Set(VENDOR_ASSIGNED_ELEMENTS);

/** A digest key: its bytes are not enumerable, so a stray JSON.stringify skips them. */
export interface DigestKey {
  readonly tenantId: string;
  readonly key: KeyObject;
}

const DIGEST_LABEL = 'ehr-connectors/reconcile-digest/v1';

/**
 * The tenant's digest key: HKDF-SHA256 over the tenant's pseudonym of a fixed label (the pseudonym key is the
 * tenant's keyed-hash key, lib/keys/pseudonym-keys.ts; it never leaves the keyring, and it is stable across DEK
 * rotation, so stored baselines stay comparable).
 */
export async function digestKeyFor(keyring: TenantKeyring, tenantId: string): Promise<DigestKey> {
  const pseudonymise = await keyring.pseudonymiser(tenantId);
  const ikm = Buffer.from(pseudonymise(DIGEST_LABEL), 'utf8');
  const key = createSecretKey(Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), DIGEST_LABEL, 32)));
  const out = { tenantId } as DigestKey;
  Object.defineProperty(out, 'key', { value: key, enumerable: false, writable: false });
  return out;
}

/** The element names a type's groups are made of: the policy's elements, sorted (each its own group). */
export function policyGroups(policy: TypeWritePolicy): string[] {
  return Object.keys(policy.elements)
    .filter((e) => !IGNORED.has(e))
    .sort();
}

/** The element (group) a top-level key belongs to: `_status` goes with `status`. */
function elementOf(key: string): string {
  return key.startsWith('_') && key.length > 1 ? key.slice(1) : key;
}

/**
 * A resource cut into its groups' parts: per policy element the object of its keys (`status`, `_status`), and the
 * rest. Absent elements give an empty part, so "absent" compares equal to "absent".
 */
export function splitGroups(
  resource: Readonly<Record<string, unknown>>,
  groups: readonly string[],
): Map<string, Record<string, unknown>> {
  const parts = new Map<string, Record<string, unknown>>();
  for (const g of groups) parts.set(g, {});
  parts.set(REST_GROUP, {});
  for (const [key, value] of Object.entries(resource)) {
    if (value === undefined || IGNORED.has(key)) continue;
    const element = elementOf(key);
    const part = parts.get(groups.includes(element) ? element : REST_GROUP)!;
    part[key] = value;
  }
  return parts;
}

/**
 * RFC 8785 (JCS) text of a JSON value as JSON.parse gives it: object members sorted by UTF-16 code units, strings
 * and numbers as ECMAScript's JSON.stringify writes them (which is what RFC 8785 prescribes), undefined members
 * left out. The `canonicalize` package does the same (test/unit/reconcile-digest.test.ts holds them equal) at a
 * third of the speed: its string building was most of the compare step's time.
 */
export function canonicalText(value: unknown, skip?: ReadonlySet<string>): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('a non-finite number is not JSON');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += item === undefined ? 'null' : canonicalText(item);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined || skip?.has(key)) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(key)}:${canonicalText(item)}`;
  }
  return `${out}}`;
}

/** The canonical text of a resource without its vendor-assigned elements (whole-record comparison). */
export function canonicalContent(resource: Readonly<Record<string, unknown>>): string {
  return canonicalText(resource, IGNORED);
}

export function keyedDigest(key: DigestKey, text: string): string {
  return createHmac('sha256', key.key).update(text, 'utf8').digest('base64url').slice(0, 32);
}

/** Keyed digests per group (policy element, or `_rest`). */
export type GroupDigests = Record<string, string>;

export function groupDigests(
  key: DigestKey,
  resource: Readonly<Record<string, unknown>>,
  groups: readonly string[],
): GroupDigests {
  const out: GroupDigests = {};
  for (const [group, part] of splitGroups(resource, groups)) out[group] = keyedDigest(key, canonicalText(part));
  return out;
}

/** The group's values of a resource, as a change or a conflict side carries them (element -> value or null). */
export function groupValues(
  resource: Readonly<Record<string, unknown>>,
  groups: readonly string[],
  elements: readonly string[],
): Record<string, unknown> {
  const parts = splitGroups(resource, groups);
  const out: Record<string, unknown> = {};
  for (const e of elements) {
    const part = parts.get(e) ?? {};
    out[e] = part[e] ?? null;
    if (part[`_${e}`] !== undefined) out[`_${e}`] = part[`_${e}`];
  }
  return out;
}
