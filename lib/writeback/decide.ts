/**
 * What an update's write-back does with each changed element, given the vendor's current resource: the local
 * value goes when the vendor still holds the base value (nobody else changed it) or holds the local value
 * already; when the vendor changed it too, the element's authority decides — `local` sends the local value
 * anyway, `shared` makes the change a conflict for a person, `remote` lets the vendor's value stand; `local-only`
 * elements are never sent. Pure: element names out, values stay in the caller.
 */
import { isDeepStrictEqual } from 'node:util';
import type { TypeWritePolicy } from './authority.js';
import { elementAuthority } from './authority.js';

export interface ElementDecisions {
  /** Elements to set to the local value (or remove, when the local value is null). */
  apply: string[];
  /** The vendor already holds the local value. */
  already: string[];
  /** Both sides changed a shared element: the change waits for a person. */
  conflicted: string[];
  /** The vendor changed an element it owns: its value stands, ours is not sent. */
  vendorKept: string[];
  /** Never written back. */
  localOnly: string[];
}

/** Absent and null are the same to a comparison (an element removed is absent). */
function valueOf(v: unknown): unknown {
  return v === undefined ? null : v;
}

export function sameValue(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(valueOf(a), valueOf(b));
}

export function decideElements(
  policy: TypeWritePolicy,
  change: { elements: Record<string, unknown>; base: Record<string, unknown> },
  vendor: Record<string, unknown>,
): ElementDecisions {
  const out: ElementDecisions = { apply: [], already: [], conflicted: [], vendorKept: [], localOnly: [] };
  for (const element of Object.keys(change.elements).sort()) {
    const authority = elementAuthority(policy, element);
    if (authority === 'local-only') {
      out.localOnly.push(element);
      continue;
    }
    const local = change.elements[element];
    const current = vendor[element];
    if (sameValue(current, local)) out.already.push(element);
    else if (sameValue(current, change.base[element])) out.apply.push(element);
    else if (authority === 'local') out.apply.push(element);
    else if (authority === 'shared') out.conflicted.push(element);
    else out.vendorKept.push(element);
  }
  return out;
}

/** The vendor's resource with the decided local values applied (null removes), without meta (the vendor's). */
export function applyElements(
  vendor: Record<string, unknown>,
  local: Record<string, unknown>,
  elements: readonly string[],
): Record<string, unknown> {
  const { meta: _meta, ...next } = vendor;
  for (const element of elements) {
    const value = local[element];
    if (value === null || value === undefined) delete next[element];
    else next[element] = value;
  }
  return next;
}
