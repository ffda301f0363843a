/**
 * The token endpoint's grant policy beyond verifying the client (smart.ts does that): which client
 * authentication methods the personality accepts, which scope syntax, clients the vendor disabled,
 * an injected `jti` replay, and scopes the vendor narrowed after registration (the grant is then the
 * intersection, and FHIR reads outside it are refused with 403).
 */
import { RESOURCE_TYPES, isResourceType, type ResourceType } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import { clientAuthMethodOf, scopeSyntaxOf, type ClientAuthMethod } from './personalities.js';

/** A refusal in OAuth terms; smart.ts answers it like its own failures. */
export class TokenRefusal extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly code: string,
    readonly description: string,
  ) {
    super(code);
  }
}

/** Before client verification: the request's authentication method must be one the vendor accepts. */
export function assertAcceptedAuthMethod(
  ctx: SandboxContext,
  authorization: string | undefined,
  form: URLSearchParams,
): ClientAuthMethod | undefined {
  const method = clientAuthMethodOf(authorization, form);
  const accepted = ctx.personality.authMethods;
  if (accepted && (!method || !accepted.includes(method))) {
    throw new TokenRefusal(
      401,
      'invalid_client',
      `this server accepts client authentication by ${accepted.join(', ')} only`,
    );
  }
  return method;
}

/** After client verification: a disabled client, or an assertion the operator asked to report as replayed. */
export function assertClientMayAuthenticate(
  ctx: SandboxContext,
  clientId: string,
  method: ClientAuthMethod | undefined,
): void {
  if (ctx.disabledClients.has(clientId))
    throw new TokenRefusal(401, 'invalid_client', 'the client has been disabled by the vendor');
  if (method === 'private_key_jwt' && ctx.faults.takeToken()) {
    ctx.stats.faultsInjected++;
    throw new TokenRefusal(401, 'invalid_client', 'assertion jti has already been used');
  }
}

/** Refuses scopes written in a syntax the personality does not speak (v1 `.read` vs v2 `.rs`). */
export function assertScopeSyntax(ctx: SandboxContext, requested: string | undefined): void {
  for (const scope of (requested ?? '').split(' ').filter((s) => s.length > 0)) {
    const syntax = scopeSyntaxOf(scope);
    if (!syntax || !ctx.personality.scopeSyntax.includes(syntax)) {
      throw new TokenRefusal(
        400,
        'invalid_scope',
        `scopes must use SMART ${ctx.personality.scopeSyntax.join(' or ')} syntax`,
      );
    }
  }
}

/** The resource types a set of read scopes covers (v1 or v2, `system/*` wildcards). */
export function typesCovered(scopes: Iterable<string>): Set<ResourceType> {
  const out = new Set<ResourceType>();
  for (const scope of scopes) {
    const m = /^system\/([A-Za-z*]+)\.([A-Za-z*]+)$/.exec(scope);
    if (!m) continue;
    const access = m[2] as string;
    const reads =
      access === 'read' ||
      access === '*' ||
      (/^c?r?u?d?s?$/.test(access) && access.includes('r') && access.includes('s'));
    if (!reads) continue;
    if (m[1] === '*') RESOURCE_TYPES.forEach((t) => out.add(t));
    else if (isResourceType(m[1] as string)) out.add(m[1] as ResourceType);
  }
  return out;
}

/** Narrows what a client may read from now on (the vendor changed the app's access); null lifts it. */
export function narrowClientScopes(
  ctx: SandboxContext,
  clientId: string,
  scopes: readonly string[] | null,
): ResourceType[] | null {
  if (scopes === null) {
    ctx.narrowedTypes.delete(clientId);
    return null;
  }
  const types = typesCovered(scopes);
  ctx.narrowedTypes.set(clientId, types);
  return [...types];
}

/**
 * The grant: the requested scopes (already checked against registration) that the vendor still
 * allows. A wildcard request is expanded to the allowed types. Nothing left → invalid_scope.
 */
export function grantWithinNarrowing(ctx: SandboxContext, clientId: string, requested: readonly string[]): string[] {
  const allowed = ctx.narrowedTypes.get(clientId);
  if (!allowed) return [...requested];
  const granted: string[] = [];
  for (const scope of requested) {
    const m = /^system\/([A-Za-z*]+)\.([A-Za-z*]+)$/.exec(scope);
    if (!m) continue;
    if (m[1] === '*') for (const t of RESOURCE_TYPES) if (allowed.has(t)) granted.push(`system/${t}.${m[2] as string}`);
    if (m[1] !== '*' && isResourceType(m[1] as string) && allowed.has(m[1] as ResourceType)) granted.push(scope);
  }
  if (granted.length === 0)
    throw new TokenRefusal(400, 'invalid_scope', 'none of the requested scopes is allowed for this client any more');
  return [...new Set(granted)];
}

/** Whether the vendor still lets the client read `type` (tokens issued before a narrowing included). */
export function clientMayRead(ctx: SandboxContext, clientId: string, type: ResourceType): boolean {
  return ctx.narrowedTypes.get(clientId)?.has(type) ?? true;
}
