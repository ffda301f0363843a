/**
 * What a local write changes, decided without the database: the resource a PUT or PATCH makes (elements the
 * consumer cannot see are kept from the stored copy, not removed), the elements whose value differs from the
 * stored local copy, the ones the write policy does not let this side own, and the outbox payload (changed
 * elements' new values and their base values, local-only elements left out: they never leave). Element names are
 * R4 top-level names; a primitive's `_x` sibling counts as `x`'s (authority and purpose alike).
 */
import { isDeepStrictEqual } from 'node:util';
import type { ResourceType } from '../../domain.js';
import type { Purpose } from '../../fhir/classification.js';
import { retainedElements } from '../../fhir/classification.js';
import type { TypeWritePolicy } from '../../writeback/authority.js';
import { VENDOR_ASSIGNED_ELEMENTS, elementAuthority } from '../../writeback/authority.js';
import type { ChangePayload } from '../../writeback/outbox.js';

type Resource = Record<string, unknown>;

/** `_status` → `status`. */
export function baseElement(element: string): string {
  return element.startsWith('_') ? element.slice(1) : element;
}

/** The content elements of a resource: all but the vendor-assigned ones (resourceType, id, meta, text). */
export function contentOf(resource: Resource): Resource {
  const out: Resource = {};
  for (const [k, v] of Object.entries(resource))
    if (!VENDOR_ASSIGNED_ELEMENTS.includes(k) && v !== undefined) out[k] = v;
  return out;
}

/** Elements of `sent` that would not be stored: outside one of the purposes (the consumer's, the integration's). */
export function elementsNotStored(type: ResourceType, sent: Resource, purposes: readonly Purpose[]): string[] {
  const retained = purposes.map((p) => new Set(retainedElements(type, p)));
  return Object.keys(contentOf(sent)).filter((e) => retained.some((set) => !set.has(baseElement(e))));
}

/**
 * The content a PUT makes: what the consumer sent, plus the stored elements its purpose hides from it (which it
 * could not have sent back). An element it can see and left out is removed.
 */
export function mergeForUpdate(
  type: ResourceType,
  stored: Resource,
  sent: Resource,
  consumerPurpose: Purpose,
): Resource {
  const visible = new Set(retainedElements(type, consumerPurpose));
  const merged: Resource = {};
  for (const [k, v] of Object.entries(contentOf(stored))) if (!visible.has(baseElement(k))) merged[k] = v;
  return { ...merged, ...contentOf(sent) };
}

/** Content elements whose value differs between two versions, sorted. */
export function changedElements(before: Resource, after: Resource): string[] {
  const a = contentOf(before);
  const b = contentOf(after);
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((n) => !isDeepStrictEqual(a[n], b[n])).sort();
}

/** Changed elements the policy leaves to the EHR (`remote`), as base names, sorted and unique. */
export function remoteOwned(policy: TypeWritePolicy, changed: readonly string[]): string[] {
  const names = new Set(changed.map(baseElement).filter((e) => elementAuthority(policy, e) === 'remote'));
  return [...names].sort();
}

/** Changed elements that are sent back to the EHR (all but local-only ones). */
export function elementsToSend(policy: TypeWritePolicy, changed: readonly string[]): string[] {
  return changed.filter((e) => elementAuthority(policy, baseElement(e)) !== 'local-only');
}

/** The outbox payload of an update: each sent element's new value and base value (null: absent). */
export function updatePayload(before: Resource, after: Resource, elements: readonly string[]): ChangePayload {
  const a = contentOf(before);
  const b = contentOf(after);
  const pick = (r: Resource) => Object.fromEntries(elements.map((e) => [e, r[e] ?? null]));
  return { kind: 'update', elements: pick(b), base: pick(a) };
}

/** The outbox payload of a create: the resource as created, without id and meta (the vendor assigns them). */
export function createPayload(type: ResourceType, content: Resource, policy: TypeWritePolicy): ChangePayload {
  const sent = Object.entries(contentOf(content)).filter(
    ([e]) => elementAuthority(policy, baseElement(e)) !== 'local-only',
  );
  return { kind: 'create', resource: { resourceType: type, ...Object.fromEntries(sent) } };
}
