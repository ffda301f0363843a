/**
 * Scopes requested = the integration's types ∩ what the vendor's SMART discovery advertises.
 *
 * A server that lists `scopes_supported` with concrete resource scopes tells which types it holds; asking
 * a token for a type it does not hold fails the whole token request (`invalid_scope`), so such a type is
 * neither requested nor synced (the planner skips it: VENDOR_SCOPE_NOT_ADVERTISED). The list says
 * nothing when it is absent, has no resource scopes, or advertises a `system/*` read wildcard: then every
 * type is requested, as before. A type counts as advertised when any context (system, user, patient)
 * lists a read of it (`.read`, `.rs`, `.r…s`, `.*`): the list tells what the server holds, the grant
 * decides what we may read (vendor-narrowed scopes: a 403 skips the type, VENDOR_SCOPE_NOT_GRANTED).
 */
import type { ResourceType } from '../domain.js';

const RESOURCE_SCOPE = /^(system|user|patient)\/([A-Za-z]+|\*)\.([A-Za-z*]+)$/;

function readable(access: string): boolean {
  return (
    access === 'read' || access === '*' || (/^[cruds]+$/.test(access) && access.includes('r') && access.includes('s'))
  );
}

/**
 * The types `scopesSupported` advertises a read scope for, or undefined when the list does not say
 * (absent, no resource scopes, only wildcards, or a `system/*` read wildcard).
 */
export function advertisedTypeNames(scopesSupported: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (!scopesSupported) return undefined;
  const named = new Set<string>();
  for (const scope of scopesSupported) {
    const m = RESOURCE_SCOPE.exec(scope.trim());
    if (!m || !readable(m[3]!)) continue;
    if (m[2] === '*') {
      if (m[1] === 'system') return undefined;
      continue;
    }
    named.add(m[2]!);
  }
  return named.size > 0 ? named : undefined;
}

/** The types the vendor does not advertise (in the order given); empty when it says nothing. */
export function unadvertisedTypes<T extends ResourceType>(
  types: readonly T[],
  scopesSupported: readonly string[] | undefined,
): T[] {
  const named = advertisedTypeNames(scopesSupported);
  return named ? types.filter((t) => !named.has(t)) : [];
}

/** The types to request scopes for: `types` less the unadvertised ones. */
export function advertisedTypes<T extends ResourceType>(
  types: readonly T[],
  scopesSupported: readonly string[] | undefined,
): T[] {
  const missing = new Set<string>(unadvertisedTypes(types, scopesSupported));
  return types.filter((t) => !missing.has(t));
}
