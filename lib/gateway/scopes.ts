/**
 * SMART App Launch v2 scope strings as the gateway understands them: `system/<Type|*>.<permissions>`, permissions
 * in SMART's order `c r u d s`. The gateway grants `r` (read), `s` (search), and — where writes are taken
 * (`{ writes: true }`: consumer registration, the token endpoint, token verification) — `c` (create) and `u`
 * (update, which covers patch). `d` grants nothing: the gateway does not delete, so `.cud` is `cu` and `.d` alone is
 * refused. The v1 forms `system/<Type>.read` and `.write` are taken as `rs` and `cu`. Anything else (patient/ or
 * user/ context, an unknown type, a query suffix, writes where only reads are taken, e.g. break-glass) is refused
 * naming the scope, never ignored.
 */
import { isResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { GatewayScope } from './access.js';

const SCOPE = /^(system|patient|user)\/([A-Za-z*]+)\.([a-z]+)$/;
const MAX_SCOPES = 32;

export interface ScopeParseOptions {
  /** Take `c` and `u` (and `.write`); without it they are refused (reads only). */
  writes?: boolean;
}

function permissionsOf(permissions: string, shown: string, field: string, writes: boolean) {
  const p = permissions === 'read' ? 'rs' : permissions === 'write' ? 'cu' : permissions;
  if (!/^c?r?u?d?s?$/.test(p) || p === '')
    throw new InvalidArgumentError(field, `${shown}: expected ${writes ? 'c, r, u, s in that order' : 'r, s or rs'}`);
  if (!writes && /[cud]/.test(p)) throw new InvalidArgumentError(field, `${shown}: read-only here: use r, s or rs`);
  if (p === 'd') throw new InvalidArgumentError(field, `${shown}: d grants nothing: the gateway does not delete`);
  return { read: p.includes('r'), search: p.includes('s'), create: p.includes('c'), update: p.includes('u') };
}

/** One scope string as a GatewayScope; `field` names the argument in the error. */
export function parseScope(value: string, field = 'scope', options: ScopeParseOptions = {}): GatewayScope {
  const shown = JSON.stringify(value.slice(0, 80));
  const m = SCOPE.exec(value);
  if (!m) throw new InvalidArgumentError(field, `${shown} is not a scope like system/Observation.rs`);
  const [, context, type, permissions] = m as unknown as [string, string, string, string];
  if (context !== 'system')
    throw new InvalidArgumentError(field, `${shown}: the gateway grants system/ scopes only (SMART Backend Services)`);
  if (type !== '*' && !isResourceType(type))
    throw new InvalidArgumentError(field, `${shown}: ${type} is not a resource type the store holds`);
  const resourceType = type === '*' ? '*' : type;
  const { read, search, create, update } = permissionsOf(permissions, shown, field, options.writes === true);
  // Read-only scopes keep the shape they always had (no create/update members).
  return {
    context: 'system',
    resourceType,
    read,
    search,
    ...(create ? { create } : {}),
    ...(update ? { update } : {}),
  };
}

/** The union of two scopes of one type. */
function merge(a: GatewayScope, b: GatewayScope): GatewayScope {
  const create = a.create === true || b.create === true;
  const update = a.update === true || b.update === true;
  return {
    ...a,
    read: a.read || b.read,
    search: a.search || b.search,
    ...(create ? { create } : {}),
    ...(update ? { update } : {}),
  };
}

/** A space-separated scope list (as in a token request or `--scope`); duplicates are merged. */
export function parseScopes(value: string, field = 'scope', options: ScopeParseOptions = {}): GatewayScope[] {
  const parts = value.split(/\s+/).filter((p) => p !== '');
  if (parts.length === 0) throw new InvalidArgumentError(field, 'at least one scope, e.g. system/Observation.rs');
  if (parts.length > MAX_SCOPES) throw new InvalidArgumentError(field, `at most ${MAX_SCOPES} scopes`);
  const merged = new Map<string, GatewayScope>();
  for (const part of parts) {
    const scope = parseScope(part, field, options);
    const seen = merged.get(scope.resourceType);
    merged.set(scope.resourceType, seen ? merge(seen, scope) : scope);
  }
  return [...merged.values()];
}

/** The canonical string of a scope (v2 permissions in SMART's order), e.g. `system/Observation.rs`. */
export function formatScope(scope: GatewayScope): string {
  const p = `${scope.create ? 'c' : ''}${scope.read ? 'r' : ''}${scope.update ? 'u' : ''}${scope.search ? 's' : ''}`;
  return `${scope.context}/${scope.resourceType}.${p}`;
}

/** Whether a scope grants create or update. */
export function isWriteScope(scope: GatewayScope): boolean {
  return scope.create === true || scope.update === true;
}

/**
 * A scope string split without throwing (the token endpoint and token verification): the scopes, merged as
 * parseScopes does, and the words that are not scopes the gateway grants, in order. Write scopes are taken here;
 * registration decides who may hold them (lib/gateway/write-scopes.ts).
 */
export function splitScopes(value: string): { scopes: GatewayScope[]; unknown: string[] } {
  const merged = new Map<string, GatewayScope>();
  const unknown: string[] = [];
  for (const part of value.split(/\s+/).filter((p) => p !== '')) {
    let scope: GatewayScope;
    try {
      scope = parseScope(part, 'scope', { writes: true });
    } catch {
      unknown.push(part);
      continue;
    }
    const seen = merged.get(scope.resourceType);
    merged.set(scope.resourceType, seen ? merge(seen, scope) : scope);
  }
  return { scopes: [...merged.values()], unknown };
}

type Permission = 'read' | 'search' | 'create' | 'update';
const PERMISSIONS: readonly Permission[] = ['read', 'search', 'create', 'update'];

/** Whether `held` allow `permission` on `type` (a `*` scope covers every type; only `*` covers a `*` request). */
function allows(held: readonly GatewayScope[], type: GatewayScope['resourceType'], permission: Permission) {
  return held.some((h) => h[permission] === true && (h.resourceType === '*' || h.resourceType === type));
}

/** Whether every permission of `requested` is held (possibly across several held scopes). */
export function scopeCovered(held: readonly GatewayScope[], requested: GatewayScope): boolean {
  return PERMISSIONS.every((p) => requested[p] !== true || allows(held, requested.resourceType, p));
}

/** The requested scopes that `held` do not cover (empty: the request is within them). */
export function scopesNotCovered(held: readonly GatewayScope[], requested: readonly GatewayScope[]): GatewayScope[] {
  return requested.filter((r) => !scopeCovered(held, r));
}
