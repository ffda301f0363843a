/**
 * Who may hold write scopes (`c`, `u`) at registration (`ehrctl consumers add`): a consumer whose purpose may
 * write, for a type some write policy lets the organisation's systems create or change. Purposes that may write
 * are the two that run the organisation's own workflows — clinical-sync (orders, tasks, a patient's telecom)
 * and scheduling-sync (appointments) — never billing-export, which only takes data out (docs/decisions.md,
 * "Writes through the gateway"). A write scope on `*` is refused: writes are granted type by type. Whether a
 * particular change is allowed is decided per request by the integration's write policy; registration only refuses
 * scopes that could never grant anything.
 */
import type { ResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { Purpose } from '../fhir/classification.js';
import { defaultWritePolicy } from '../writeback/authority.js';
import type { GatewayScope } from './access.js';
import { formatScope, isWriteScope } from './scopes.js';

export const WRITING_PURPOSES: readonly Purpose[] = ['clinical-sync', 'scheduling-sync'];

/** Types whose default write policy allows a create or an update. */
export function writableByDefault(type: ResourceType): boolean {
  const policy = defaultWritePolicy(type);
  return policy.create || policy.update;
}

/** Refuses (InvalidArgumentError on `field`, naming the scope) write scopes the purpose or type cannot use. */
export function assertWriteScopesAllowed(purpose: Purpose, scopes: readonly GatewayScope[], field = '--scopes'): void {
  for (const scope of scopes.filter(isWriteScope)) {
    const shown = formatScope(scope);
    if (!WRITING_PURPOSES.includes(purpose))
      throw new InvalidArgumentError(
        field,
        `${shown}: purpose ${purpose} may not write (write scopes are for ${WRITING_PURPOSES.join(', ')})`,
      );
    if (scope.resourceType === '*')
      throw new InvalidArgumentError(field, `${shown}: write scopes name a type (e.g. system/Appointment.cu)`);
    if (!writableByDefault(scope.resourceType))
      throw new InvalidArgumentError(field, `${shown}: ${scope.resourceType} is read-only under the write policy`);
  }
}
