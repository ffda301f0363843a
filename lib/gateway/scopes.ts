/**
 * SMART App Launch v2 scope strings as the gateway understands them: `system/<Type|*>.<permissions>`, where the
 * gateway, being read-only, grants only `r` (read) and `s` (search) — `rs`, `r` or `s`. The v1 form
 * `system/<Type>.read` is taken as `rs`. Anything else (patient/ or user/ context, write permissions, an unknown
 * type, a query suffix) is refused naming the scope, never ignored.
 */
import { isResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { GatewayScope } from './access.js';

const SCOPE = /^(system|patient|user)\/([A-Za-z*]+)\.([a-z]+)$/;
const MAX_SCOPES = 32;

/** One scope string as a GatewayScope; `field` names the argument in the error. */
export function parseScope(value: string, field = 'scope'): GatewayScope {
  const shown = JSON.stringify(value.slice(0, 80));
  const m = SCOPE.exec(value);
  if (!m) throw new InvalidArgumentError(field, `${shown} is not a scope like system/Observation.rs`);
  const [, context, type, permissions] = m as unknown as [string, string, string, string];
  if (context !== 'system')
    throw new InvalidArgumentError(field, `${shown}: the gateway grants system/ scopes only (SMART Backend Services)`);
  if (type !== '*' && !isResourceType(type))
    throw new InvalidArgumentError(field, `${shown}: ${type} is not a resource type the store holds`);
  const resourceType = type === '*' ? '*' : type;
  if (permissions === 'read') return { context: 'system', resourceType, read: true, search: true };
  if (!/^(rs|r|s)$/.test(permissions)) {
    const what = /^c?r?u?d?s?$/.test(permissions) ? 'the gateway is read-only: use r, s or rs' : 'expected r, s or rs';
    throw new InvalidArgumentError(field, `${shown}: ${what}`);
  }
  return { context: 'system', resourceType, read: permissions.includes('r'), search: permissions.includes('s') };
}

/** A space-separated scope list (as in a token request or `--scope`); duplicates are merged. */
export function parseScopes(value: string, field = 'scope'): GatewayScope[] {
  const parts = value.split(/\s+/).filter((p) => p !== '');
  if (parts.length === 0) throw new InvalidArgumentError(field, 'at least one scope, e.g. system/Observation.rs');
  if (parts.length > MAX_SCOPES) throw new InvalidArgumentError(field, `at most ${MAX_SCOPES} scopes`);
  const merged = new Map<string, GatewayScope>();
  for (const part of parts) {
    const scope = parseScope(part, field);
    const seen = merged.get(scope.resourceType);
    merged.set(
      scope.resourceType,
      seen ? { ...seen, read: seen.read || scope.read, search: seen.search || scope.search } : scope,
    );
  }
  return [...merged.values()];
}

/** The canonical string of a scope (v2 permissions in SMART's order), e.g. `system/Observation.rs`. */
export function formatScope(scope: GatewayScope): string {
  return `${scope.context}/${scope.resourceType}.${scope.read ? 'r' : ''}${scope.search ? 's' : ''}`;
}

/**
 * A scope string split without throwing (the token endpoint and token verification): the scopes, merged as
 * parseScopes does, and the words that are not scopes the gateway grants, in order.
 */
export function splitScopes(value: string): { scopes: GatewayScope[]; unknown: string[] } {
  const merged = new Map<string, GatewayScope>();
  const unknown: string[] = [];
  for (const part of value.split(/\s+/).filter((p) => p !== '')) {
    let scope: GatewayScope;
    try {
      scope = parseScope(part);
    } catch {
      unknown.push(part);
      continue;
    }
    const seen = merged.get(scope.resourceType);
    merged.set(
      scope.resourceType,
      seen ? { ...seen, read: seen.read || scope.read, search: seen.search || scope.search } : scope,
    );
  }
  return { scopes: [...merged.values()], unknown };
}

/** Whether `held` allow `permission` on `type` (a `*` scope covers every type; only `*` covers a `*` request). */
function allows(held: readonly GatewayScope[], type: GatewayScope['resourceType'], permission: 'read' | 'search') {
  return held.some((h) => h[permission] && (h.resourceType === '*' || h.resourceType === type));
}

/** Whether every permission of `requested` is held (possibly across several held scopes). */
export function scopeCovered(held: readonly GatewayScope[], requested: GatewayScope): boolean {
  return (
    (!requested.read || allows(held, requested.resourceType, 'read')) &&
    (!requested.search || allows(held, requested.resourceType, 'search'))
  );
}

/** The requested scopes that `held` do not cover (empty: the request is within them). */
export function scopesNotCovered(held: readonly GatewayScope[], requested: readonly GatewayScope[]): GatewayScope[] {
  return requested.filter((r) => !scopeCovered(held, r));
}
