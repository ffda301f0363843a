/**
 * SMART App Launch v2 scopes as the gateway grants them (read side only): `system/<Type>.<perms>` where
 * `<Type>` is a stored resource type or `*`, and `<perms>` is `r`, `s` or `rs` (SMART's c-r-u-d-s order,
 * restricted to what a read API can do). Anything else — v1 `.read`, patient/ or user/ context, create,
 * update or delete permissions, query restrictions (`?category=…`) — is not a scope the gateway knows
 * and is refused, never ignored or widened.
 */
import type { ResourceType } from '../domain.js';
import { isResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { GatewayScope } from './access.js';

const SCOPE = /^system\/([A-Za-z]+|\*)\.(rs|r|s)$/;
/** The most scopes one string may carry (a registration or a token request). */
export const MAX_SCOPES = 100;

/** One scope, or undefined when it is not one the gateway grants. */
export function parseScope(text: string): GatewayScope | undefined {
  const m = SCOPE.exec(text);
  if (!m) return undefined;
  const type = m[1]!;
  if (type !== '*' && !isResourceType(type)) return undefined;
  const perms = m[2]!;
  return {
    context: 'system',
    resourceType: type as ResourceType | '*',
    read: perms.includes('r'),
    search: perms.includes('s'),
  };
}

export function formatScope(scope: GatewayScope): string {
  return `system/${scope.resourceType}.${scope.read ? 'r' : ''}${scope.search ? 's' : ''}`;
}

/** The scopes of a space-separated string; `unknown` lists the words that are not scopes (in order). */
export function parseScopes(text: string): { scopes: GatewayScope[]; unknown: string[] } {
  const scopes: GatewayScope[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const word of text.split(/[ \t\n]+/).filter((w) => w.length > 0)) {
    const scope = parseScope(word);
    if (!scope) unknown.push(word);
    else if (!seen.has(formatScope(scope))) {
      seen.add(formatScope(scope));
      scopes.push(scope);
    }
  }
  return { scopes, unknown };
}

/**
 * Scopes from a registration (`consumers add --scopes`): at least one, all known. InvalidArgumentError names
 * the first word that is not a scope the gateway grants.
 */
export function parseRegisteredScopes(text: string): GatewayScope[] {
  const { scopes, unknown } = parseScopes(text);
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      '--scopes',
      `${JSON.stringify(unknown[0]!.slice(0, 80))} is not a scope the gateway grants ` +
        '(system/<Type>.r, .s or .rs, <Type> a stored resource type or *)',
    );
  if (scopes.length === 0) throw new InvalidArgumentError('--scopes', 'give at least one scope');
  if (scopes.length > MAX_SCOPES) throw new InvalidArgumentError('--scopes', `at most ${MAX_SCOPES} scopes`);
  return scopes;
}

/** Whether `held` allow `permission` on `type` (a `*` scope covers every type; only `*` covers a `*` request). */
function allows(held: readonly GatewayScope[], type: ResourceType | '*', permission: 'read' | 'search'): boolean {
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

/** The resource types scopes name (`*` included as such). */
export function scopeTypes(scopes: readonly GatewayScope[]): Array<ResourceType | '*'> {
  return [...new Set(scopes.map((s) => s.resourceType))];
}
