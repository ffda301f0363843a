/**
 * Who may see which type through the gateway, decided from the verified access alone — before the store is
 * touched, so a refusal says nothing about whether a resource exists:
 *   - the consumer's purpose must allow the type (lib/fhir/classification.ts), else 403; break-glass does not
 *     change the purpose (minimum necessary still caps what is returned);
 *   - a scope must grant the interaction (`r` for read by id, `s` for search and $everything): the consumer's own
 *     scopes first, then its unexpired break-glass grants (the access is then under that grant, and its audit
 *     events carry the grant's id); else 403. Read by id without a covering scope is 403 rather than 404: the
 *     answer depends only on the token, never on the resource, so it leaks nothing;
 *   - create and update (`c`, `u`; patch is an update) come from the consumer's own scopes only: break-glass
 *     widens what may be read in an emergency, never what may be written.
 */
import type { ResourceType } from '../../domain.js';
import { PURPOSE_POLICIES } from '../../fhir/classification.js';
import type { GatewayAccess, GatewayScope } from '../access.js';
import { formatScope } from '../scopes.js';

export type Interaction = 'read' | 'search' | 'create' | 'update';

export interface Grant {
  /** The scope used, as SMART v2 writes it, e.g. `system/Observation.rs`. */
  scope: string;
  /** Set when the access is under a break-glass grant. */
  breakGlassId?: string;
}

export function scopeString(s: GatewayScope): string {
  return formatScope(s);
}

function covers(s: GatewayScope, type: ResourceType, interaction: Interaction): boolean {
  return (s.resourceType === '*' || s.resourceType === type) && s[interaction] === true;
}

export function purposeAllows(access: GatewayAccess, type: ResourceType): boolean {
  return PURPOSE_POLICIES[access.purpose].resourceTypes.includes(type);
}

/** The scope (own, then break-glass) granting the interaction on the type; undefined: none does. */
export function grantFor(
  access: GatewayAccess,
  type: ResourceType,
  interaction: Interaction,
  now = new Date(),
): Grant | undefined {
  const own = access.scopes.find((s) => covers(s, type, interaction));
  if (own) return { scope: scopeString(own) };
  if (interaction === 'create' || interaction === 'update') return undefined;
  for (const grant of access.breakGlass) {
    if (grant.consumerId !== access.consumerId || grant.expiresAt.getTime() <= now.getTime()) continue;
    const s = grant.scopes.find((g) => covers(g, type, interaction));
    if (s) return { scope: scopeString(s), breakGlassId: grant.id };
  }
  return undefined;
}
